# Sourced by scripts/demo and scripts/test: `ensure_venv SPEC` makes .venv/ (Python >= 3.11;
# PYTHON=python3.12 picks the interpreter) and installs SPEC into it (editable), quietly, and only
# when pyproject.toml (or the C extension's build) changed since the last install.
ensure_venv() {
  local spec=$1 python=${PYTHON:-python3} me
  me=scripts/$(basename "$0")
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "$me: xtok needs Python >= 3.11; '$python' is not one (try PYTHON=python3.12 $0)" >&2
    exit 1
  fi
  if [ -x .venv/bin/python ] && [ -n "${PYTHON:-}" ]; then
    local have want
    have=$(.venv/bin/python -c 'import platform; print(platform.python_version())')
    want=$("$python" -c 'import platform; print(platform.python_version())')
    if [ "$have" != "$want" ]; then
      echo "$me: .venv has Python $have; recreating it with $python ($want)" >&2
      "$python" -m venv --clear .venv
    fi
  fi
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  local stamp=".venv/.xtok-installed-${spec//[^a-z]/_}" digest
  # Also reinstall when the C extension changes, or the Hyperscan headers it needs come or go
  # (a plain test: with pipefail, a failing command in here would end the script unseen).
  digest=$( (cat pyproject.toml setup.py src/xtok/run/_hsmask.c
    if [ -e /usr/include/hs/hs.h ]; then echo "with hs.h"; fi) | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    echo "$me: installing xtok ($spec) into .venv; again only when its build changes" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" \
      2> >(grep -v 'is ignored' >&2)
    echo "$digest" > "$stamp"
  fi
}
