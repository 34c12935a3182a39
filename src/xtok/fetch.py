"""The fetch step: read the requested secrets with the token's credentials, and nothing else."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from xtok.aws import AwsConfig, aws_errors, client, session
from xtok.errors import AccessDenied, UsageError
from xtok.policy import check_secret_name
from xtok.sensitive import Secret
from xtok.token import Credentials

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


def fetch(
    refs: Sequence[SecretRef], creds: Credentials, config: AwsConfig
) -> list[tuple[SecretRef, Secret]]:
    """Every requested value, or an error naming the first secret that could not be read."""
    if creds.scope is not None:
        for ref in refs:
            if not creds.scope.allows(ref.name):
                raise AccessDenied(
                    f"the token's scope ({creds.scope.describe()}) does not include secret "
                    f"{ref.name!r}",
                    tip="ask the approver for a token that names this secret",
                )
    sm = client(session(config, creds), "secretsmanager", config)
    cache: dict[str, Secret] = {}
    out = []
    for ref in refs:
        if ref.name not in cache:
            with aws_errors(f"cannot read secret {ref.name!r} (for {ref.env})"):
                resp = sm.get_secret_value(SecretId=ref.name)
            raw = resp.get("SecretString")
            cache[ref.name] = Secret(raw if raw is not None else resp.get("SecretBinary", b""))
        out.append((ref, _select(ref, cache[ref.name])))
    return out


def _select(ref: SecretRef, value: Secret) -> Secret:
    if ref.json_key is not None:
        try:
            doc = json.loads(value.reveal())
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise UsageError(
                f"secret {ref.name!r} is not a JSON object, so #{ref.json_key} "
                "cannot select from it"
            )
        if ref.json_key not in doc:
            raise UsageError(f"secret {ref.name!r} has no JSON key {ref.json_key!r}")
        item = doc[ref.json_key]
        value = Secret(item if isinstance(item, str) else json.dumps(item))
    if not ref.as_file:
        try:
            text = value.reveal_text()
        except UnicodeDecodeError:
            text = "\0"
        if "\0" in text:
            raise UsageError(
                f"secret {ref.label!r} is binary and cannot go into an environment variable",
                tip=f"deliver it as a file: --secret-file {ref.env}={ref.name}",
            )
    return value
