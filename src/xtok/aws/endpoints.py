"""Secrets Manager's endpoint for a region, as botocore resolves it, without importing botocore.

The answer comes from botocore's own data files (the service's endpoint rule set and the
partitions table, found where botocore's loader looks: AWS_DATA_PATH, ~/.aws/models, then
botocore's package), evaluated here by a small interpreter of the rule language. Whatever this
module does not answer (a function the interpreter does not know, FIPS, dual-stack) is left to
botocore's own client: speed never at the cost of reaching the right AWS. tests/test_endpoints.py
compares the fetch's endpoint with botocore's over every region in the partitions data, with
FIPS and dual-stack on and off.
"""

from __future__ import annotations

import json
import os
import re
import string
import zlib
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from xtok.regular_file import NotRegularFile, read_regular

SERVICE = "secretsmanager"
# botocore's check of a client's region (a valid host label, not all digits).
REGION = re.compile(r"^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{,63}(?<!-)$")


class _Unsupported(Exception):
    """The rule set uses something this interpreter does not implement."""


class _ResolutionError(Exception):
    """The rule set refuses the parameters (botocore raises EndpointResolutionError)."""


def resolve(region: str, *, fips: bool, dualstack: bool) -> str | None:
    """The endpoint URL botocore would use for Secrets Manager in `region` (which matches
    REGION), or None where botocore's client must decide.

    FIPS, dual-stack and the legacy `fips-…`/`…-fips` pseudo-regions also consult botocore's
    endpoints table (1.2 MB of JSON, slower to parse than botocore is to import), which may
    refuse a variant the rule set would build: there, botocore's own client does the fetch.
    """
    if fips or dualstack or "fips" in region:
        return None
    params = {"Region": region, "UseFIPS": False, "UseDualStack": False}
    try:
        return _Rules(_load_latest(SERVICE, "endpoint-rule-set-1"), _load("partitions")).run(params)
    except (_Unsupported, _ResolutionError):
        return None  # botocore's client will say what is wrong


class _Rules:
    """An interpreter of the endpoint rule language, for the functions Secrets Manager's rule
    set uses (as botocore.endpoint_provider evaluates them)."""

    def __init__(self, ruleset: dict[str, Any], partitions: dict[str, Any]) -> None:
        self.ruleset, self.partitions = ruleset, partitions["partitions"]

    def run(self, params: dict[str, Any]) -> str:
        scope = dict(params)
        for name, spec in self.ruleset["parameters"].items():
            if scope.get(name) is None and "default" in spec:
                scope[name] = spec["default"]
        url = self._rules(self.ruleset["rules"], scope)
        if url is None:
            raise _ResolutionError("no rule matched")
        return url

    def _rules(self, rules: list[dict[str, Any]], scope: dict[str, Any]) -> str | None:
        for rule in rules:
            local = dict(scope)
            if not all(self._call(c, local) not in (False, None) for c in rule["conditions"]):
                continue
            if rule["type"] == "endpoint":
                if rule["endpoint"].get("headers") or rule["endpoint"].get("properties"):
                    raise _Unsupported("endpoint headers or properties")
                return str(self._value(rule["endpoint"]["url"], local))
            if rule["type"] == "error":
                raise _ResolutionError(str(self._value(rule["error"], local)))
            if rule["type"] != "tree":
                raise _Unsupported(rule["type"])
            found = self._rules(rule["rules"], local)
            if found is not None:
                return found
        return None

    def _value(self, value: Any, scope: dict[str, Any]) -> Any:
        if isinstance(value, dict) and "fn" in value:
            return self._call(value, scope)
        if isinstance(value, dict) and "ref" in value:
            return scope.get(value["ref"])
        if isinstance(value, str) and "{" in value:
            out = ""
            for literal, field, _, _ in string.Formatter().parse(value):
                out += literal
                if field is not None:
                    found: Any = scope
                    for key in field.split("#"):
                        found = found[key]
                    out += str(found)
            return out
        return value

    def _call(self, call: dict[str, Any], scope: dict[str, Any]) -> Any:
        args = [self._value(a, scope) for a in call["argv"]]
        fn = call["fn"]
        if fn == "isSet":
            result: Any = args[0] is not None
        elif fn == "not":
            result = not args[0]
        elif fn in ("booleanEquals", "stringEquals"):
            kind = bool if fn == "booleanEquals" else str
            if not all(isinstance(a, kind) for a in args):
                raise _ResolutionError(f"{fn} of {args!r}")
            result = args[0] == args[1]
        elif fn == "getAttr" and "[" not in args[1]:
            result = args[0]
            for key in args[1].split("."):
                result = result[key]
        elif fn == "aws.partition":
            result = self._partition(args[0])
        else:
            raise _Unsupported(fn)
        if "assign" in call:
            scope[call["assign"]] = result
        return result

    def _partition(self, region: str) -> dict[str, Any]:
        for partition in self.partitions:
            if region in partition["regions"] or re.match(partition["regionRegex"], region):
                return {**partition["outputs"], "name": partition["id"]}
        first = self.partitions[0]
        return {**first["outputs"], "name": first["id"]}


def _search_paths() -> list[Path]:
    """Where botocore's loader looks for data, in its order."""
    paths = os.environ.get("AWS_DATA_PATH", "").split(os.pathsep)
    extra = [Path(os.path.expandvars(p)).expanduser() for p in paths if p]
    spec = find_spec("botocore")
    builtin = [Path(p) / "data" for p in (spec.submodule_search_locations or [])] if spec else []
    return [*extra, Path("~/.aws/models").expanduser(), *builtin]


def _load(name: str) -> dict[str, Any]:
    for root in _search_paths():
        for path in (root / f"{name}.json", root / f"{name}.json.gz"):
            try:
                raw = read_regular(path, what="botocore data file")
            except (OSError, NotRegularFile):  # missing, or not a file: botocore skips it too
                continue
            data = json.loads(zlib.decompress(raw, wbits=31) if path.suffix == ".gz" else raw)
            if isinstance(data, dict):
                return data
    raise _Unsupported(f"no {name} data")


def _load_latest(service: str, kind: str) -> dict[str, Any]:
    """The rule set of the service's newest API version (botocore's choice too)."""
    versions: set[str] = set()
    for root in _search_paths():
        if (root / service).is_dir():
            versions.update(p.name for p in (root / service).iterdir() if p.is_dir())
    for version in sorted(versions, reverse=True):
        try:
            return _load(f"{service}/{version}/{kind}")
        except _Unsupported:
            continue
    raise _Unsupported(f"no {service} {kind} data")
