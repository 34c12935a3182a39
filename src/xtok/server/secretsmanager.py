"""Secrets Manager: secrets with versions and staging labels, stored sealed."""

from __future__ import annotations

import hmac
import json
import re
import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import Any

from xtok.server import tags
from xtok.server.conditions import ContextValue
from xtok.server.faults import Fault
from xtok.server.ops import Ctx, Handler, random_text, register_into

OPERATIONS: dict[str, Handler] = {}
op = register_into(OPERATIONS)

_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_VALUE_LIMIT = 65_536
DAY = 86_400
BATCH_LIMIT = 20  # secrets per BatchGetSecretValue


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
    tags.remove(conn, "secret", arn)
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
    """Store a version and move `stages` to it (see _move_stage). Retrying with the same
    ClientRequestToken and value does nothing; with another value it fails, as in AWS."""
    raw, is_binary = value
    existing = conn.execute(
        "SELECT value, binary FROM secret_versions WHERE arn = ? AND version_id = ?",
        (arn, version_id),
    ).fetchone()
    if existing is not None:
        stored = ctx.sealer.open(existing["value"], f"secret:{arn}:{version_id}")
        if hmac.compare_digest(stored, raw) and bool(existing["binary"]) == is_binary:
            return
        raise Fault(
            "ResourceExistsException",
            "A version with this ClientRequestToken already exists with a different value.",
        )
    sealed = ctx.sealer.seal(raw, f"secret:{arn}:{version_id}")
    conn.execute(
        "INSERT INTO secret_versions VALUES (?,?,?,?,?,?)",
        (arn, version_id, sealed, int(is_binary), "[]", ctx.ts),
    )
    for stage in stages:
        _move_stage(conn, arn, stage, version_id)
    conn.execute("UPDATE secrets SET changed = ? WHERE arn = ?", (ctx.ts, arn))


def _stages_of(conn: Any, arn: str) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT version_id, stages FROM secret_versions WHERE arn = ?", (arn,)
    ).fetchall()
    return {r["version_id"]: json.loads(r["stages"]) for r in rows}


def _set_stages(conn: Any, arn: str, version_id: str, stages: list[str]) -> None:
    conn.execute(
        "UPDATE secret_versions SET stages = ? WHERE arn = ? AND version_id = ?",
        (json.dumps(stages), arn, version_id),
    )


def _move_stage(conn: Any, arn: str, stage: str, to: str | None) -> None:
    """Attach `stage` to version `to` (None: only detach it). A label is on one version at a
    time; when AWSCURRENT moves, AWSPREVIOUS moves to the version that had AWSCURRENT, and
    only then (Secrets Manager's staging rules)."""
    stages = _stages_of(conn, arn)
    holder = next((v for v, s in stages.items() if stage in s), None)
    if holder == to:
        return
    if holder is not None:
        _set_stages(conn, arn, holder, [s for s in stages[holder] if s != stage])
    if to is not None:
        current = [s for s in _stages_of(conn, arn)[to] if s != stage]
        _set_stages(conn, arn, to, [*current, stage])
    if stage == "AWSCURRENT" and holder is not None:
        _move_stage(conn, arn, "AWSPREVIOUS", holder)


def _version_stages(raw: Any) -> list[str]:
    if raw is None:
        return ["AWSCURRENT"]
    if not (
        isinstance(raw, list)
        and 1 <= len(raw) <= 20
        and all(isinstance(s, str) and 1 <= len(s) <= 256 for s in raw)
    ):
        raise _invalid_parameter("VersionStages must list 1-20 labels of 1-256 characters.")
    return list(dict.fromkeys(raw))


def _tags(raw: Any) -> dict[str, str]:
    return tags.parse(
        raw,
        _invalid_parameter(
            "Tags must be up to 50 of Key (1-128) and Value (0-256) of letters, digits, "
            "spaces and _.:/=+-@; keys may not start with aws:"
        ),
    )


def _add_tags(conn: Any, arn: str, new: dict[str, str]) -> None:
    tags.add(
        conn,
        "secret",
        arn,
        new,
        Fault("LimitExceededException", "A secret can have at most 50 tags."),
    )


@op("CreateSecret")
def create_secret(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    name = str(p.get("Name", ""))
    if not _NAME.match(name):
        raise Fault.invalid("Name must be 1-512 characters of ASCII letters, digits and /_+=.@-")
    arn = _arn(ctx, name)
    new_tags = _tags(p.get("Tags", []))
    keys = {"secretsmanager:name": name, **tags.condition_keys(list(new_tags), new_tags)}
    ctx.allow("secretsmanager:CreateSecret", arn, keys, shown=name)
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
        _add_tags(conn, arn, new_tags)
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
    stages = _version_stages(p.get("VersionStages"))
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


def _metadata(ctx: Ctx, row: Any, stages_key: str = "VersionIdsToStages") -> dict[str, Any]:
    """A secret's description; DescribeSecret and ListSecrets name the version map differently."""
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
        "Tags": tags.listed(ctx.db, "secret", row["arn"]),
        stages_key: {
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
        if key not in _FILTERS:
            raise _invalid_parameter(f"Invalid filter key {key}")
        rows = [r for r in rows if any(_filter_hit(ctx, r, key, v) for v in values)]
    page, token = _page(p, rows)
    result: dict[str, Any] = {
        "SecretList": [_metadata(ctx, r, "SecretVersionsToStages") for r in page],
        "NextToken": token,
    }
    return result


_FILTERS = ("name", "description", "tag-key", "tag-value", "all")


def _filter_hit(ctx: Ctx, row: Any, key: str, value: str) -> bool:
    negate = value.startswith("!")
    value = value.removeprefix("!")
    secret_tags = tags.of(ctx.db, "secret", row["arn"]) if "tag" in key or key == "all" else {}
    fields = {
        "name": [row["name"]],
        "description": [row["description"] or ""],
        "tag-key": list(secret_tags),
        "tag-value": list(secret_tags.values()),
        "all": [row["name"], row["description"] or "", *secret_tags, *secret_tags.values()],
    }[key]
    hit = any(f.startswith(value) for f in fields)
    return hit != negate


def _page(p: dict[str, Any], items: list[Any], limit: int = 100) -> tuple[list[Any], str | None]:
    """Secrets Manager's pagination: MaxResults (1-`limit`) and an opaque NextToken."""
    try:
        start = int(p.get("NextToken") or 0)
        size = int(p.get("MaxResults") or limit)
    except (TypeError, ValueError):
        raise _invalid_parameter("NextToken must be one this server returned") from None
    if start < 0 or not 1 <= size <= limit:
        raise _invalid_parameter(f"MaxResults must be 1-{limit}")
    more = start + size < len(items)
    return items[start : start + size], str(start + size) if more else None


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


@op("UpdateSecretVersionStage")
def update_secret_version_stage(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    stage = _version_stages([p.get("VersionStage")])[0]
    row = _find(
        ctx,
        str(p.get("SecretId", "")),
        "secretsmanager:UpdateSecretVersionStage",
        extra={"secretsmanager:versionstage": stage},  # the label it moves, as AWS sets it
    )
    move_to, remove_from = p.get("MoveToVersionId"), p.get("RemoveFromVersionId")
    with ctx.db.write() as conn:
        versions = _stages_of(conn, row["arn"])
        for version in (move_to, remove_from):
            if version is not None and version not in versions:
                raise Fault(
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret version.",
                )
        holder = next((v for v, s in versions.items() if stage in s), None)
        if holder is not None and holder != move_to and remove_from != holder:
            raise _invalid_parameter(
                f"The staging label {stage} is attached to another version: "
                "name it in RemoveFromVersionId to move it."
            )
        if remove_from is not None and remove_from != holder:
            raise _invalid_parameter(
                f"The staging label {stage} is not attached to version RemoveFromVersionId."
            )
        if move_to is None and stage == "AWSCURRENT":
            raise _invalid_parameter("AWSCURRENT can only be moved to another version.")
        _move_stage(conn, row["arn"], stage, move_to)
        conn.execute("UPDATE secrets SET changed = ? WHERE arn = ?", (ctx.ts, row["arn"]))
    return {"ARN": row["arn"], "Name": row["name"]}


@op("ListSecretVersionIds")
def list_secret_version_ids(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, str(p.get("SecretId", "")), "secretsmanager:ListSecretVersionIds")
    rows = ctx.db.all(
        "SELECT version_id, stages, created FROM secret_versions WHERE arn = ? "
        "ORDER BY created DESC, version_id",
        row["arn"],
    )
    if not p.get("IncludeDeprecated"):  # a version without labels is deprecated
        rows = [r for r in rows if json.loads(r["stages"])]
    page, token = _page(p, rows)
    return {
        "ARN": row["arn"],
        "Name": row["name"],
        "Versions": [
            {
                "VersionId": r["version_id"],
                "VersionStages": json.loads(r["stages"]),
                "CreatedDate": _dt(r["created"]),
            }
            for r in page
        ],
        "NextToken": token,
    }


@op("BatchGetSecretValue")
def batch_get_secret_value(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """Each secret is authorized as its own GetSecretValue; a secret the caller may not read, or
    that does not exist, is an entry in Errors (with the same message as GetSecretValue)."""
    ids, filters = p.get("SecretIdList"), p.get("Filters")
    if (ids is None) == (filters is None):
        raise _invalid_parameter("Specify either SecretIdList or Filters.")
    ctx.allow("secretsmanager:BatchGetSecretValue", "*")
    token = None
    if ids is not None:
        if not (
            isinstance(ids, list)
            and 1 <= len(ids) <= BATCH_LIMIT
            and all(isinstance(i, str) for i in ids)
            and p.get("MaxResults") is None
        ):
            raise _invalid_parameter("SecretIdList must name 1-20 secrets, without MaxResults.")
        wanted = list(ids)
    else:  # needs ListSecrets too, as in AWS
        size = p.get("MaxResults", BATCH_LIMIT)
        if not isinstance(size, int) or not 1 <= size <= BATCH_LIMIT:
            raise _invalid_parameter("MaxResults must be 1-20.")
        listed = list_secrets(
            ctx, {"Filters": filters, "MaxResults": size, "NextToken": p.get("NextToken")}
        )
        wanted, token = [e["ARN"] for e in listed["SecretList"]], listed.get("NextToken")
    values, errors = [], []
    for secret_id in wanted:
        try:
            values.append(get_secret_value(ctx, {"SecretId": secret_id}))
        except Fault as fault:
            errors.append(
                {
                    "SecretId": secret_id,
                    "ErrorCode": fault.code_for("json"),
                    "Message": fault.message,
                }
            )
    ctx.resource = ",".join(v["ARN"] for v in values) or "*"  # what the audit log records
    return {"SecretValues": values, "Errors": errors, "NextToken": token}


_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _flag(p: dict[str, Any], key: str, default: bool = False) -> bool:
    value = p.get(key, default)
    if not isinstance(value, bool):
        raise _invalid_parameter(f"{key} must be true or false.")
    return value


@op("GetRandomPassword")
def get_random_password(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.allow("secretsmanager:GetRandomPassword", "*")
    length = p.get("PasswordLength", 32)
    if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 4096:
        raise _invalid_parameter("PasswordLength must be between 1 and 4096.")
    excluded = p.get("ExcludeCharacters", "")
    if not isinstance(excluded, str):
        raise _invalid_parameter("ExcludeCharacters must be a string.")
    kinds = [
        ("ExcludeLowercase", string.ascii_lowercase),
        ("ExcludeUppercase", string.ascii_uppercase),
        ("ExcludeNumbers", string.digits),
        ("ExcludePunctuation", _PUNCTUATION),
    ]
    pools = [chars for flag, chars in kinds if not _flag(p, flag)]
    if _flag(p, "IncludeSpace"):
        pools.append(" ")
    pools = [
        kept for kept in ("".join(c for c in pool if c not in excluded) for pool in pools) if kept
    ]
    each = _flag(p, "RequireEachIncludedType", True)
    if not pools or (each and length < len(pools)):
        raise _invalid_parameter("No password of this length can include every required type.")
    chars = [secrets.choice(pool) for pool in pools] if each else []
    everything = "".join(pools)
    chars += [secrets.choice(everything) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return {"RandomPassword": "".join(chars)}


@op("TagResource")
def tag_resource(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    new = _tags(p.get("Tags"))
    keys = tags.condition_keys(list(new), new)
    row = _find(ctx, str(p.get("SecretId", "")), "secretsmanager:TagResource", extra=keys)
    with ctx.db.write() as conn:
        _add_tags(conn, row["arn"], new)
    return {}


@op("UntagResource")
def untag_resource(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    keys = tags.keys(p.get("TagKeys"), _invalid_parameter("TagKeys must list tag keys."))
    row = _find(
        ctx,
        str(p.get("SecretId", "")),
        "secretsmanager:UntagResource",
        extra=tags.condition_keys(keys),
    )
    with ctx.db.write() as conn:
        tags.remove(conn, "secret", row["arn"], keys)
    return {}


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
