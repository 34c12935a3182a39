"""`ENV=NAME[#KEY]`: how a request, a run and the fetch step name a secret and where it goes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from xtok.aws.policy import check_secret_name
from xtok.errors import UsageError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SecretRef:
    """`ENV=NAME[#JSONKEY]`: deliver secret NAME (or one key of its JSON) as ENV."""

    env: str
    name: str
    json_key: str | None = None
    as_file: bool = False

    @property
    def label(self) -> str:
        return self.name + (f"#{self.json_key}" if self.json_key else "")


def parse_ref(spec: str, *, as_file: bool = False) -> SecretRef:
    option = "--secret-file" if as_file else "--secret"
    env, eq, rest = spec.partition("=")
    if not eq or not env or not rest:
        raise UsageError(f"{option} {spec!r} is not ENV=NAME", tip=f"e.g. {option} DB_PASS=prod/db")
    if not _ENV_NAME.match(env):
        raise UsageError(f"{option}: {env!r} is not a valid environment variable name")
    name, hash_, key = rest.partition("#")
    if hash_ and not key:
        raise UsageError(f"{option} {spec!r}: empty JSON key after '#'")
    return SecretRef(env=env, name=check_secret_name(name), json_key=key or None, as_file=as_file)


def check_unique(refs: Sequence[SecretRef]) -> None:
    seen: set[str] = set()
    for ref in refs:
        if ref.env in seen:
            raise UsageError(f"{ref.env} is requested twice")
        seen.add(ref.env)
