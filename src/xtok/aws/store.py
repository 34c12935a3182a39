"""The secret store (AWS Secrets Manager): put, list and describe. Values go in, never out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xtok.aws.policy import check_prefix, check_secret_name
from xtok.aws.session import AwsConfig, aws_errors, client, session
from xtok.sensitive import Secret


@dataclass(frozen=True)
class PutResult:
    name: str
    arn: str
    version_id: str
    created: bool


def _payload(value: Secret) -> dict[str, Any]:
    """SecretString for UTF-8 text, SecretBinary for anything else (binary stays binary)."""
    try:
        return {"SecretString": value.reveal_text()}
    except UnicodeDecodeError:
        return {"SecretBinary": value.reveal()}


def put(config: AwsConfig, name: str, value: Secret, description: str | None = None) -> PutResult:
    """Create the secret, or put a new version (AWSCURRENT moves, AWSPREVIOUS keeps the old)."""
    check_secret_name(name)
    sm = client(session(config), "secretsmanager", config)
    payload = _payload(value)
    with aws_errors(f"cannot store secret {name!r}", scrub=[value.reveal()]):
        try:
            extra = {"Description": description} if description is not None else {}
            resp = sm.create_secret(Name=name, **payload, **extra)
            return PutResult(name, resp["ARN"], resp["VersionId"], created=True)
        except sm.exceptions.ResourceExistsException:
            pass
        resp = sm.put_secret_value(SecretId=name, **payload)
        if description is not None:
            sm.update_secret(SecretId=name, Description=description)
    return PutResult(name, resp["ARN"], resp["VersionId"], created=False)


def list_names(config: AwsConfig, prefix: str | None = None) -> list[dict[str, Any]]:
    sm = client(session(config), "secretsmanager", config)
    kwargs: dict[str, Any] = {}
    if prefix is not None:
        kwargs["Filters"] = [{"Key": "name", "Values": [check_prefix(prefix)]}]
    rows = []
    with aws_errors("cannot list secrets"):
        for page in sm.get_paginator("list_secrets").paginate(**kwargs):
            for item in page.get("SecretList", []):
                if prefix is None or item["Name"].startswith(prefix):
                    rows.append(_metadata(item))
    return sorted(rows, key=lambda r: r["Name"])


def describe(config: AwsConfig, name: str) -> dict[str, Any]:
    check_secret_name(name)
    sm = client(session(config), "secretsmanager", config)
    with aws_errors(f"cannot describe secret {name!r}"):
        return _metadata(sm.describe_secret(SecretId=name))


_FIELDS = (
    "Name",
    "ARN",
    "Description",
    "CreatedDate",
    "LastChangedDate",
    "LastAccessedDate",
    "DeletedDate",
    "VersionIdsToStages",
    "Tags",
)


def _metadata(item: dict[str, Any]) -> dict[str, Any]:
    """Only metadata fields, by allow-list: a describe never carries a value."""
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in item.items()
        if k in _FIELDS
    }
