"""The CLI and its documentation agree, and the CLI fails politely."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import pytest
from conftest import ROOT

from xtok.cli import cli, main
from xtok.errors import EXIT_CODE_MEANINGS, ExitCode

README = (ROOT / "README.md").read_text()


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
    return found


def leaf(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", commands(), ids=" ".join)
def test_every_command_has_help_and_a_readme_entry(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*path, "--help"]) == 0
    assert "Usage: xtok " + " ".join(path) in capsys.readouterr().out
    command = leaf(path)
    if isinstance(command, click.Group):
        return
    assert f"xtok {' '.join(path)}" in README
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert opt in README, f"{opt} of `xtok {' '.join(path)}` is not in the README"


def test_exit_codes_match_the_readme_table() -> None:
    rows = dict(re.findall(r"^\| (\d{3}) \| (.+?) \|$", README, flags=re.M))
    assert {int(k): v for k, v in rows.items()} == {
        int(code): text for code, text in EXIT_CODE_MEANINGS.items()
    }
    assert set(EXIT_CODE_MEANINGS) == set(ExitCode)
    assert min(ExitCode) > 128 + 64  # above every 128+N of a killed child


def test_run_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    main(["run", "--help"])
    out = capsys.readouterr().out
    for code, text in EXIT_CODE_MEANINGS.items():
        assert f"{int(code)}  {text}" in out


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec scripts/test" in ci and "scripts/test\n" in README


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "No such command"),
        (["run", "--bogus"], "No such option"),
        (["run", "--secret", "X=a/b"], "Missing argument"),
        (["run", "--secret", "bad", "--", "true"], "is not ENV=NAME"),
        (["run", "--secret", "1X=a", "--", "true"], "not a valid environment variable name"),
        (["run", "--secret", "X=a", "--secret", "X=b", "--", "true"], "requested twice"),
        (["run", "--", "true"], "no secret requested"),
        (
            ["run", "--token-stdin", "--token-env", "T", "--secret", "X=a", "--", "true"],
            "only one of",
        ),
        (["policy", "session", "--secret", "a b"], "invalid secret name"),
        (["revoke", "--role", "r", "--before", "yesterday"], "not an ISO 8601 time"),
    ],
)
def test_bad_input_is_one_line_and_exit_200(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("xtok: error: ") and len(err.strip().splitlines()) <= 2


def test_policy_commands_print_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["policy", "reader", "--secret", "prod/db", "--account", "123456789012"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["Statement"][0]["Resource"].endswith(":123456789012:secret:prod/db-??????")
    trust = "arn:aws:iam::123456789012:user/alice"
    assert main(["policy", "role", "--trust", trust, "--prefix", "prod/"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"TrustPolicy", "PermissionPolicy"}
    assert main(["policy", "role", "--trust", trust, "--prefix", "p/", "--only", "trust"]) == 0
    assert json.loads(capsys.readouterr().out)["Statement"][0]["Principal"] == {"AWS": [trust]}


def test_completion_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    assert "_XTOK_COMPLETE" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "-"]])
def test_light_commands_do_not_import_boto(argv: list[str]) -> None:
    from xtok.sensitive import Secret
    from xtok.tokens import token as tokens

    token = tokens.encode(
        tokens.Credentials("ASIAIOSFODNN7EXAMPLE", Secret("k" * 40), Secret("t" * 40))
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "xtok", *argv],
        input=token,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "xtok.cli" in imported
    assert not {m for m in imported if m.split(".")[0] in ("boto3", "botocore")}


def test_no_stdin_at_all_is_not_a_crash() -> None:
    """Some CI runners start jobs with descriptor 0 closed."""
    for argv in (["secret", "put", "a/b"], ["inspect"], ["approve", "-"]):
        proc = subprocess.run(
            ["sh", "-c", 'exec 0<&-; exec "$0" -m xtok "$@"', sys.executable, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode in (200, 201), (argv, proc.stderr)
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "group", [(), *(p for p in commands() if isinstance(leaf(p), click.Group))]
)
def test_command_summaries_fit_an_80_column_terminal(
    group: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a terminal of 80 columns, `--help` shows each command's summary whole (click cuts a
    long one short with '...')."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main([*group, "--help"]) == 0
    listed = capsys.readouterr().out.split("Commands:\n", 1)[1]
    assert listed.strip()
    for line in listed.splitlines():
        assert not line.endswith("..."), line
