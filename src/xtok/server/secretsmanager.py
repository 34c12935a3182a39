"""Secrets Manager: secrets with versions and staging labels, stored sealed."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from xtok.server.conditions import ContextValue
from xtok.server.faults import Fault
from xtok.server.ops import Ctx, Handler, random_text, register_into

OPERATIONS: dict[str, Handler] = {}
op = register_into(OPERATIONS)

_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_VALUE_LIMIT = 65_536
DAY = 86_400


def _not_found() -> Fault:
    return Fault("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")


def _invalid_request(message: str) -> Fault:
    return Fault("InvalidRequestException", message)


def _invalid_parameter(message: str) -> Fault:
    return Fault("InvalidParameterException", message)


def _arn(ctx: Ctx, name: str) -> str:
    return (
        f"arn:aws:secretsmanager:{ctx.settings.region}:{ctx.account}:secret:{name}-"
        + random_text(6, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    )


def _purge_expired(ctx: Ctx) -> None:
    expired = ctx.db.all(
        "SELECT arn FROM secrets WHERE purge_after IS NOT NULL AND purge_after <= ?", ctx.ts
    )
    if expired:
        with ctx.db.write() as conn:
            for row in expired:
                _drop(conn, row["arn"])


def _drop(conn: Any, arn: str) -> None:
    conn.execute("DELETE FROM secret_versions WHERE arn = ?", (arn,))
    conn.execute("DELETE FROM secrets WHERE arn = ?", (arn,))


def _find(
    ctx: Ctx,
    secret_id: str,
    action: str,
    *,
    allow_deleted: bool = False,
    extra: dict[str, ContextValue] | None = None,
) -> Any:
    """The secret named by name or ARN, after checking the caller may `action` it. A denial
    names the secret as the caller did: it tells nothing about whether the secret exists."""
    _purge_expired(ctx)
    row = _resolve(ctx, secret_id)
    resource = row["arn"] if row is not None else _requested_arn(ctx, secret_id)
    keys: dict[str, ContextValue] = {"secretsmanager:secretid": resource, **(extra or {})}
    ctx.allow(action, resource, keys, shown=secret_id)
    if row is None:
        raise _not_found()
    if row["deleted"] is not None and not allow_deleted:
        raise _invalid_request(
            "You can't perform this operation on the secret because it was marked for deletion."
        )
    return row


def _arn_prefix(ctx: Ctx) -> str:
    return f"arn:aws:secretsmanager:{ctx.settings.region}:{ctx.account}:secret:"


def _resolve(ctx: Ctx, secret_id: str) -> Any:
    """The secret a SecretId names: its name, its full ARN, or its ARN without the random
    suffix. An ARN of another partition, region or account is not a local secret."""
    if not secret_id.startswith("arn:"):
        return ctx.db.one("SELECT * FROM secrets WHERE name = ?", secret_id)
    prefix = _arn_prefix(ctx)
    if not secret_id.startswith(prefix):
        return None
    return ctx.db.one(
        "SELECT * FROM secrets WHERE arn = ?1 OR name = ?2 ORDER BY arn = ?1 DESC LIMIT 1",
        secret_id,
        secret_id.removeprefix(prefix),
    )


def _requested_arn(ctx: Ctx, secret_id: str) -> str:
    return secret_id if secret_id.startswith("arn:") else _arn_prefix(ctx) + secret_id


def _required_value(p: dict[str, Any]) -> tuple[bytes, bool]:
    value = _value(p)
    if value is None:
        raise _invalid_parameter("You must provide either SecretString or SecretBinary.")
    return value


def _value(p: dict[str, Any]) -> tuple[bytes, bool] | None:
    string, binary = p.get("SecretString"), p.get("SecretBinary")
    if string is not None and binary is not None:
        raise _invalid_parameter(
            "You can't specify both a binary secret value and a string "
            "secret value in the same secret."
        )
    if string is None and binary is None:
        return None
    raw = binary if binary is not None else str(string).encode()
    if len(raw) > _VALUE_LIMIT:
        raise _invalid_parameter("The secret value is larger than 65,536 bytes.")
    return raw, binary is not None


def _add_version(
    ctx: Ctx, conn: Any, arn: str, value: tuple[bytes, bool], version_id: str, stages: list[str]
) -> None:
    """Store a version; AWSCURRENT moves to it and the old current becomes AWSPREVIOUS."""
    if conn.execute(
        "SELECT 1 FROM secret_versions WHERE arn = ? AND version_id = ?", (arn, version_id)
    ).fetchone():
        raise Fault("ResourceExistsException", "A version with this ClientRequestToken exists.")
    rows = conn.execute(
        "SELECT version_id, stages FROM secret_versions WHERE arn = ?", (arn,)
    ).fetchall()
    for row in rows:
        old = json.loads(row["stages"])
        new = [s for s in old if s not in stages and s != "AWSPREVIOUS"]
        if "AWSCURRENT" in stages and "AWSCURRENT" in old:
            new.append("AWSPREVIOUS")
        if new != old:
            conn.execute(
                "UPDATE secret_versions SET stages = ? WHERE arn = ? AND version_id = ?",
                (json.dumps(new), arn, row["version_id"]),
            )
    raw, is_binary = value
    sealed = ctx.sealer.seal(raw, f"secret:{arn}:{version_id}")
    conn.execute(
        "INSERT INTO secret_versions VALUES (?,?,?,?,?,?)",
        (arn, version_id, sealed, int(is_binary), json.dumps(stages), ctx.ts),
    )
    conn.execute("UPDATE secrets SET changed = ? WHERE arn = ?", (ctx.ts, arn))


@op("CreateSecret")
def create_secret(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    name = str(p.get("Name", ""))
    if not _NAME.match(name):
        raise Fault.invalid("Name must be 1-512 characters of ASCII letters, digits and /_+=.@-")
    arn = _arn(ctx, name)
    ctx.allow("secretsmanager:CreateSecret", arn, {"secretsmanager:name": name}, shown=name)
    _purge_expired(ctx)
    value = _value(p)
    version_id = str(p.get("ClientRequestToken") or uuid.uuid4())
    with ctx.db.write() as conn:
        existing = conn.execute("SELECT deleted FROM secrets WHERE name = ?", (name,)).fetchone()
        if existing is not None:
            if existing["deleted"] is not None:
                raise _invalid_request(
                    "You can't create this secret because a secret with this "
                    "name is already scheduled for deletion."
                )
            raise Fault(
                "ResourceExistsException",
                f"The operation failed because the secret {name} already exists.",
            )
        conn.execute(
            "INSERT INTO secrets VALUES (?,?,?,?,?,?,?,?)",
            (name, arn, p.get("Description"), ctx.ts, ctx.ts, None, None, None),
        )
        if value is not None:
            _add_version(ctx, conn, arn, value, version_id, ["AWSCURRENT"])
    result = {"ARN": arn, "Name": name}
    if value is not None:
        result["VersionId"] = version_id
    return result


@op("PutSecretValue")
def put_secret_value(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, str(p.get("SecretId", "")), "secretsmanager:PutSecretValue")
    value = _required_value(p)
    version_id = str(p.get("ClientRequestToken") or uuid.uuid4())
    stages = list(p.get("VersionStages") or ["AWSCURRENT"])
    with ctx.db.write() as conn:
        _add_version(ctx, conn, row["arn"], value, version_id, stages)
    return {
        "ARN": row["arn"],
        "Name": row["name"],
        "VersionId": version_id,
        "VersionStages": stages,
    }


@op("UpdateSecret")
def update_secret(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, str(p.get("SecretId", "")), "secretsmanager:UpdateSecret")
    value = _value(p)
    version_id = str(p.get("ClientRequestToken") or uuid.uuid4())
    with ctx.db.write() as conn:
        if "Description" in p:
            conn.execute(
                "UPDATE secrets SET description = ?, changed = ? WHERE arn = ?",
                (p["Description"], ctx.ts, row["arn"]),
            )
        if value is not None:
            _add_version(ctx, conn, row["arn"], value, version_id, ["AWSCURRENT"])
    result = {"ARN": row["arn"], "Name": row["name"]}
    if value is not None:
        result["VersionId"] = version_id
    return result


@op("GetSecretValue")
def get_secret_value(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    version_id, stage = p.get("VersionId"), p.get("VersionStage")
    keys: dict[str, ContextValue] = {}
    if version_id is not None:
        keys["secretsmanager:versionid"] = str(version_id)
    if stage is not None:
        keys["secretsmanager:versionstage"] = str(stage)
    row = _find(ctx, str(p.get("SecretId", "")), "secretsmanager:GetSecretValue", extra=keys)
    versions = ctx.db.all("SELECT * FROM secret_versions WHERE arn = ?", row["arn"])
    if version_id is not None:
        chosen = [v for v in versions if v["version_id"] == version_id]
        if stage is not None:
            chosen = [v for v in chosen if stage in json.loads(v["stages"])]
    else:
        wanted = stage or "AWSCURRENT"
        chosen = [v for v in versions if wanted in json.loads(v["stages"])]
    if not chosen:
        raise Fault(
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret value for staging label or version.",
        )
    version = chosen[0]
    raw = ctx.sealer.open(version["value"], f"secret:{row['arn']}:{version['version_id']}")
    today = ctx.ts - ctx.ts % DAY
    if row["accessed"] != today:
        with ctx.db.write() as conn:
            conn.execute("UPDATE secrets SET accessed = ? WHERE arn = ?", (today, row["arn"]))
    result: dict[str, Any] = {
        "ARN": row["arn"],
        "Name": row["name"],
        "VersionId": version["version_id"],
        "VersionStages": json.loads(version["stages"]),
        "CreatedDate": _dt(version["created"]),
    }
    if version["binary"]:
        result["SecretBinary"] = raw
    else:
        result["SecretString"] = raw.decode()
    return result


@op("DescribeSecret")
def describe_secret(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(
        ctx, str(p.get("SecretId", "")), "secretsmanager:DescribeSecret", allow_deleted=True
    )
    return _metadata(ctx, row)


def _metadata(ctx: Ctx, row: Any) -> dict[str, Any]:
    versions = ctx.db.all(
        "SELECT version_id, stages FROM secret_versions WHERE arn = ?", row["arn"]
    )
    return {
        "ARN": row["arn"],
        "Name": row["name"],
        "Description": row["description"],
        "CreatedDate": _dt(row["created"]),
        "LastChangedDate": _dt(row["changed"]),
        "LastAccessedDate": _dt(row["accessed"]),
        "DeletedDate": _dt(row["deleted"]),
        "VersionIdsToStages": {
            v["version_id"]: json.loads(v["stages"]) for v in versions if json.loads(v["stages"])
        },
    }


@op("ListSecrets")
def list_secrets(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.allow("secretsmanager:ListSecrets", "*")
    _purge_expired(ctx)
    rows = ctx.db.all("SELECT * FROM secrets ORDER BY name")
    if not p.get("IncludePlannedDeletion"):
        rows = [r for r in rows if r["deleted"] is None]
    for flt in p.get("Filters", []):
        key, values = flt.get("Key"), flt.get("Values", [])
        if key not in ("name", "description", "all"):
            raise _invalid_parameter(f"Invalid filter key {key}")
        rows = [r for r in rows if any(_filter_hit(r, key, v) for v in values)]
    start = int(p.get("NextToken") or 0)
    size = int(p.get("MaxResults") or 100)
    page = rows[start : start + size]
    result: dict[str, Any] = {"SecretList": [_metadata(ctx, r) for r in page]}
    if start + size < len(rows):
        result["NextToken"] = str(start + size)
    return result


def _filter_hit(row: Any, key: str, value: str) -> bool:
    negate = value.startswith("!")
    value = value.removeprefix("!")
    fields = {
        "name": [row["name"]],
        "description": [row["description"] or ""],
        "all": [row["name"], row["description"] or ""],
    }[key]
    hit = any(f.startswith(value) for f in fields)
    return hit != negate


@op("DeleteSecret")
def delete_secret(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, str(p.get("SecretId", "")), "secretsmanager:DeleteSecret", allow_deleted=True)
    force = bool(p.get("ForceDeleteWithoutRecovery"))
    window = p.get("RecoveryWindowInDays")
    if force and window is not None:
        raise _invalid_parameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
        )
    days = 30 if window is None else int(window)
    if not force and not 7 <= days <= 30:
        raise _invalid_parameter("RecoveryWindowInDays value must be between 7 and 30 days.")
    with ctx.db.write() as conn:
        if force:
            _drop(conn, row["arn"])
            when = ctx.ts
        else:
            when = ctx.ts + days * DAY
            conn.execute(
                "UPDATE secrets SET deleted = ?, purge_after = ? WHERE arn = ?",
                (ctx.ts, when, row["arn"]),
            )
    return {"ARN": row["arn"], "Name": row["name"], "DeletionDate": _dt(when)}


@op("RestoreSecret")
def restore_secret(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, str(p.get("SecretId", "")), "secretsmanager:RestoreSecret", allow_deleted=True)
    with ctx.db.write() as conn:
        conn.execute(
            "UPDATE secrets SET deleted = NULL, purge_after = NULL WHERE arn = ?", (row["arn"],)
        )
    return {"ARN": row["arn"], "Name": row["name"]}


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
