"""IAM: users, access keys, roles, inline policies and virtual MFA devices."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from xtok.server import tags, trust
from xtok.server.faults import Fault
from xtok.server.ops import Ctx, Handler, random_id, random_text, register_into
from xtok.server.policydoc import INLINE_LIMITS, TRUST_LIMIT, check_size, parse_document
from xtok.server.totp import STEP, accepted_step, base32, new_seed

OPERATIONS: dict[str, Handler] = {}
op = register_into(OPERATIONS)

_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_PATH = re.compile(r"^/([\x21-\x7e]*/)?$")
MAX_KEYS_PER_USER = 2


def _no_such(kind: str, name: str) -> Fault:
    return Fault("NoSuchEntity", f"The {kind} with name {name} cannot be found.", 404)


def _exists(kind: str, name: str) -> Fault:
    return Fault("EntityAlreadyExists", f"{kind} with name {name} already exists.", 409)


def _name(p: dict[str, Any], key: str) -> str:
    value = str(p.get(key, ""))
    if not _NAME.match(value):
        raise Fault.invalid(f"{key} must be 1-64 characters of [\\w+=,.@-]")
    return value


def _path(p: dict[str, Any]) -> str:
    path = str(p.get("Path") or "/")
    if not _PATH.match(path):
        raise Fault.invalid("Path must begin and end with /")
    return path


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _user_arn(ctx: Ctx, row: Any) -> str:
    return f"arn:aws:iam::{ctx.account}:user{row['path']}{row['name']}"


def _role_arn(ctx: Ctx, row: Any) -> str:
    return f"arn:aws:iam::{ctx.account}:role{row['path']}{row['name']}"


def _user(ctx: Ctx, name: str) -> Any:
    row = ctx.db.one("SELECT * FROM users WHERE name = ?", name)
    if row is None:
        raise _no_such("user", name)
    return row


def _role(ctx: Ctx, name: str) -> Any:
    row = ctx.db.one("SELECT * FROM roles WHERE name = ?", name)
    if row is None:
        raise _no_such("role", name)
    return row


def _target_user(ctx: Ctx, p: dict[str, Any], action: str) -> Any:
    """UserName, or the calling user when omitted; authorized for `action`."""
    name = p.get("UserName") or ctx.caller.user
    if name is None:
        raise Fault.invalid("UserName is required when the caller is not an IAM user")
    return _target(ctx, "user", _name({"UserName": name}, "UserName"), action)


_BY_NAME = {
    "user": "SELECT * FROM users WHERE name = ?",
    "role": "SELECT * FROM roles WHERE name = ?",
}


def _target(ctx: Ctx, kind: str, name: str, action: str) -> Any:
    """The user or role `name`, authorized for `action` on its ARN (with its path). A denial
    names it as `user NAME` like IAM does, so it reveals neither existence nor path."""
    row = ctx.db.one(_BY_NAME[kind], name)
    path = row["path"] if row is not None else "/"
    ctx.allow(action, f"arn:aws:iam::{ctx.account}:{kind}{path}{name}", shown=f"{kind} {name}")
    if row is None:
        raise _no_such(kind, name)
    return row


def _page(p: dict[str, Any], key: str, items: list[Any]) -> dict[str, Any]:
    """IAM's list pagination: MaxItems (default 100) and an opaque Marker."""
    start = int(p.get("Marker") or 0)
    size = int(p.get("MaxItems") or 100)
    if start < 0 or not 1 <= size <= 1000:
        raise Fault.invalid("MaxItems must be 1-1000 and Marker one this server returned")
    out: dict[str, Any] = {
        key: items[start : start + size],
        "IsTruncated": start + size < len(items),
    }
    if out["IsTruncated"]:
        out["Marker"] = str(start + size)
    return out


def _user_out(ctx: Ctx, row: Any) -> dict[str, Any]:
    return {
        "Path": row["path"],
        "UserName": row["name"],
        "UserId": row["user_id"],
        "Arn": _user_arn(ctx, row),
        "CreateDate": _dt(row["created"]),
        "Tags": tags.listed(ctx.db, "user", row["name"]),
    }


def _role_out(ctx: Ctx, row: Any) -> dict[str, Any]:
    return {
        "Path": row["path"],
        "RoleName": row["name"],
        "RoleId": row["role_id"],
        "Arn": _role_arn(ctx, row),
        "CreateDate": _dt(row["created"]),
        "AssumeRolePolicyDocument": quote(trust.shown(ctx.db, ctx.account, row["trust"])),
        "Description": row["description"],
        "MaxSessionDuration": row["max_session"],
        "Tags": tags.listed(ctx.db, "role", row["name"]),
    }


# --- users and access keys ---------------------------------------------------------------------


@op("CreateUser")
def create_user(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    name, path = _name(p, "UserName"), _path(p)
    new_tags = _tags(p.get("Tags", []))
    ctx.request_keys.update(tags.condition_keys(list(new_tags), new_tags))
    ctx.allow("iam:CreateUser", f"arn:aws:iam::{ctx.account}:user{path}{name}")
    with ctx.db.write() as conn:
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise _exists("User", name)
        conn.execute("INSERT INTO users VALUES (?,?,?,?)", (name, random_id("AIDA"), path, ctx.ts))
        _add_tags(conn, "user", name, new_tags)
    return {"User": _user_out(ctx, _user(ctx, name))}


@op("GetUser")
def get_user(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return {"User": _user_out(ctx, _target_user(ctx, p, "iam:GetUser"))}


@op("ListUsers")
def list_users(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.allow("iam:ListUsers", f"arn:aws:iam::{ctx.account}:user/")
    return _page(
        p, "Users", [_user_out(ctx, r) for r in ctx.db.all("SELECT * FROM users ORDER BY name")]
    )


@op("DeleteUser")
def delete_user(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _target_user(ctx, p, "iam:DeleteUser")
    with ctx.db.write() as conn:
        busy = conn.execute(
            "SELECT (SELECT count(*) FROM access_keys WHERE user_name = :n) + "
            "(SELECT count(*) FROM inline_policies WHERE kind = 'user' AND owner = :n) + "
            "(SELECT count(*) FROM mfa_devices WHERE user_name = :n) + "
            "(SELECT count(*) FROM group_members WHERE user_name = :n) + "
            "(SELECT count(*) FROM attachments WHERE kind = 'user' AND owner = :n)",
            {"n": row["name"]},
        ).fetchone()[0]
        if busy:
            raise Fault(
                "DeleteConflict",
                "Cannot delete entity, must remove access keys, policies, MFA devices and "
                "group memberships first.",
                409,
            )
        conn.execute("DELETE FROM users WHERE name = ?", (row["name"],))
        tags.remove(conn, "user", row["name"])
    return {}


@op("CreateAccessKey")
def create_access_key(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _target_user(ctx, p, "iam:CreateAccessKey")
    key_id, secret = random_id("AKIA"), random_text(40)
    with ctx.db.write() as conn:
        count = conn.execute(
            "SELECT count(*) FROM access_keys WHERE user_name = ?", (row["name"],)
        ).fetchone()[0]
        if count >= MAX_KEYS_PER_USER:
            raise Fault("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", 409)
        conn.execute(
            "INSERT INTO access_keys VALUES (?,?,?,?,?)",
            (
                key_id,
                row["name"],
                ctx.sealer.seal(secret.encode(), f"access-key:{key_id}"),
                "Active",
                ctx.ts,
            ),
        )
    return {
        "AccessKey": {
            "UserName": row["name"],
            "AccessKeyId": key_id,
            "Status": "Active",
            "SecretAccessKey": secret,
            "CreateDate": _dt(ctx.ts),
        }
    }


@op("ListAccessKeys")
def list_access_keys(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _target_user(ctx, p, "iam:ListAccessKeys")
    keys = ctx.db.all("SELECT * FROM access_keys WHERE user_name = ?", row["name"])
    return _page(
        p,
        "AccessKeyMetadata",
        [
            {
                "UserName": k["user_name"],
                "AccessKeyId": k["key_id"],
                "Status": k["status"],
                "CreateDate": _dt(k["created"]),
            }
            for k in keys
        ],
    )


@op("DeleteAccessKey")
def delete_access_key(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _target_user(ctx, p, "iam:DeleteAccessKey")
    with ctx.db.write() as conn:
        gone = conn.execute(
            "DELETE FROM access_keys WHERE key_id = ? AND user_name = ?",
            (p.get("AccessKeyId"), row["name"]),
        ).rowcount
    if not gone:
        raise _no_such("access key", str(p.get("AccessKeyId")))
    return {}


# --- roles ---------------------------------------------------------------------------------------


def _max_session(p: dict[str, Any]) -> int:
    value = int(p.get("MaxSessionDuration", 3600))
    if not 3600 <= value <= 43_200:
        raise Fault.invalid("MaxSessionDuration must be between 3600 and 43200 seconds")
    return value


def _trust_text(ctx: Ctx, text: str) -> str:
    doc = parse_document(text, trust=True)
    check_size(text, TRUST_LIMIT, f"Cannot exceed quota for ACLSizePerRole: {TRUST_LIMIT}")
    return trust.bind(ctx.db, ctx.account, doc)


@op("CreateRole")
def create_role(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    name, path = _name(p, "RoleName"), _path(p)
    new_tags = _tags(p.get("Tags", []))
    ctx.request_keys.update(tags.condition_keys(list(new_tags), new_tags))
    ctx.allow("iam:CreateRole", f"arn:aws:iam::{ctx.account}:role{path}{name}")
    policy = _trust_text(ctx, str(p.get("AssumeRolePolicyDocument", "")))
    with ctx.db.write() as conn:
        if conn.execute("SELECT 1 FROM roles WHERE name = ?", (name,)).fetchone():
            raise _exists("Role", name)
        conn.execute(
            "INSERT INTO roles VALUES (?,?,?,?,?,?,?)",
            (
                name,
                random_id("AROA"),
                path,
                policy,
                _max_session(p),
                p.get("Description"),
                ctx.ts,
            ),
        )
        _add_tags(conn, "role", name, new_tags)
    return {"Role": _role_out(ctx, _role(ctx, name))}


def _target_role(ctx: Ctx, p: dict[str, Any], action: str) -> Any:
    return _target(ctx, "role", _name(p, "RoleName"), action)


@op("GetRole")
def get_role(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return {"Role": _role_out(ctx, _target_role(ctx, p, "iam:GetRole"))}


@op("ListRoles")
def list_roles(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.allow("iam:ListRoles", f"arn:aws:iam::{ctx.account}:role/")
    return _page(
        p, "Roles", [_role_out(ctx, r) for r in ctx.db.all("SELECT * FROM roles ORDER BY name")]
    )


@op("UpdateRole")
def update_role(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _target_role(ctx, p, "iam:UpdateRole")
    with ctx.db.write() as conn:
        if "MaxSessionDuration" in p:
            conn.execute(
                "UPDATE roles SET max_session = ? WHERE name = ?", (_max_session(p), row["name"])
            )
        if "Description" in p:
            conn.execute(
                "UPDATE roles SET description = ? WHERE name = ?", (p["Description"], row["name"])
            )
    return {}


@op("UpdateAssumeRolePolicy")
def update_assume_role_policy(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _target_role(ctx, p, "iam:UpdateAssumeRolePolicy")
    policy = _trust_text(ctx, str(p.get("PolicyDocument", "")))
    with ctx.db.write() as conn:
        conn.execute("UPDATE roles SET trust = ? WHERE name = ?", (policy, row["name"]))
    return {}


@op("DeleteRole")
def delete_role(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _target_role(ctx, p, "iam:DeleteRole")
    with ctx.db.write() as conn:
        if conn.execute(
            "SELECT 1 FROM inline_policies WHERE kind = 'role' AND owner = :n UNION ALL "
            "SELECT 1 FROM attachments WHERE kind = 'role' AND owner = :n",
            {"n": row["name"]},
        ).fetchone():
            raise Fault(
                "DeleteConflict",
                "Cannot delete entity, must delete policies and detach managed policies first.",
                409,
            )
        conn.execute("DELETE FROM roles WHERE name = ?", (row["name"],))
        tags.remove(conn, "role", row["name"])
    return {}


# --- inline policies (users and roles alike) ---------------------------------------------------


# Who can hold policies: kind -> (the operations' noun, the authorized lookup of its row).
Target = Callable[[Ctx, dict[str, Any], str], Any]
HOLDERS: dict[str, tuple[str, Target]] = {}


def _owner(ctx: Ctx, p: dict[str, Any], kind: str, verb: str) -> str:
    noun, target = HOLDERS[kind]
    return str(target(ctx, p, f"iam:{verb}{noun}Policy")["name"])


def _put_policy(kind: str) -> Handler:
    def put(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        owner = _owner(ctx, p, kind, "Put")
        name = _name(p, "PolicyName")
        text = str(p.get("PolicyDocument", ""))
        doc = json.dumps(parse_document(text))
        with ctx.db.write() as conn:
            others = conn.execute(
                "SELECT document FROM inline_policies WHERE kind = ? AND owner = ? AND name != ?",
                (kind, owner, name),
            ).fetchall()
            limit = INLINE_LIMITS[kind]
            check_size(
                text + "".join(r["document"] for r in others),
                limit,
                f"Maximum policy size of {limit} bytes exceeded for {kind} {owner}",
            )
            conn.execute(
                "INSERT OR REPLACE INTO inline_policies VALUES (?,?,?,?)", (kind, owner, name, doc)
            )
        return {}

    return put


def _get_policy(kind: str) -> Handler:
    def get(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        owner = _owner(ctx, p, kind, "Get")
        name = _name(p, "PolicyName")
        row = ctx.db.one(
            "SELECT document FROM inline_policies WHERE kind = ? AND owner = ? AND name = ?",
            kind,
            owner,
            name,
        )
        if row is None:
            raise _no_such("policy", name)
        key = HOLDERS[kind][0] + "Name"
        return {key: owner, "PolicyName": name, "PolicyDocument": quote(row["document"])}

    return get


def _delete_policy(kind: str) -> Handler:
    def delete(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        owner = _owner(ctx, p, kind, "Delete")
        name = _name(p, "PolicyName")
        with ctx.db.write() as conn:
            gone = conn.execute(
                "DELETE FROM inline_policies WHERE kind = ? AND owner = ? AND name = ?",
                (kind, owner, name),
            ).rowcount
        if not gone:
            raise _no_such("policy", name)
        return {}

    return delete


def _list_policies(kind: str) -> Handler:
    def list_(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        owner = _owner(ctx, p, kind, "List")
        rows = ctx.db.all(
            "SELECT name FROM inline_policies WHERE kind = ? AND owner = ? ORDER BY name",
            kind,
            owner,
        )
        return _page(p, "PolicyNames", [r["name"] for r in rows])

    return list_


def inline_policy_operations(kind: str, noun: str, target: Target) -> dict[str, Handler]:
    """Put/Get/Delete/List inline policy operations for a kind of policy holder."""
    HOLDERS[kind] = (noun, target)
    return {
        f"Put{noun}Policy": _put_policy(kind),
        f"Get{noun}Policy": _get_policy(kind),
        f"Delete{noun}Policy": _delete_policy(kind),
        f"List{noun}Policies": _list_policies(kind),
    }


OPERATIONS.update(inline_policy_operations("role", "Role", _target_role))
OPERATIONS.update(inline_policy_operations("user", "User", _target_user))


# --- tags (users and roles alike) ----------------------------------------------------------------


def _tags(raw: Any) -> dict[str, str]:
    return tags.parse(
        raw,
        Fault.invalid_input(
            "Tags must be up to 50 of Key (1-128) and Value (0-256) of letters, digits, "
            "spaces and _.:/=+-@; keys may not start with aws: or repeat (in any case)"
        ),
        folded=True,
    )


def _add_tags(conn: Any, kind: str, owner: str, new: dict[str, str]) -> None:
    limit = Fault("LimitExceeded", "Cannot exceed quota for TagsPerEntity: 50", 409)
    tags.add(conn, kind, owner, new, limit)


def tag_operations(kind: str, noun: str, target: Target) -> dict[str, Handler]:
    """Tag/Untag/List...Tags operations for users or roles."""

    def tag(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        new = _tags(p.get("Tags"))
        ctx.request_keys.update(tags.condition_keys(list(new), new))
        row = target(ctx, p, f"iam:Tag{noun}")
        with ctx.db.write() as conn:
            _add_tags(conn, kind, row["name"], new)
        return {}

    def untag(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        keys = tags.keys(p.get("TagKeys"), Fault.invalid_input("TagKeys must list tag keys."))
        ctx.request_keys.update(tags.condition_keys(keys))
        row = target(ctx, p, f"iam:Untag{noun}")
        with ctx.db.write() as conn:
            tags.remove(conn, kind, row["name"], keys)
        return {}

    def list_(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        row = target(ctx, p, f"iam:List{noun}Tags")
        return _page(p, "Tags", tags.listed(ctx.db, kind, row["name"]) or [])

    return {f"Tag{noun}": tag, f"Untag{noun}": untag, f"List{noun}Tags": list_}


OPERATIONS.update(tag_operations("role", "Role", _target_role))
OPERATIONS.update(tag_operations("user", "User", _target_user))


# --- virtual MFA -----------------------------------------------------------------------------


@op("CreateVirtualMFADevice")
def create_virtual_mfa_device(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    name, path = _name(p, "VirtualMFADeviceName"), _path(p)
    serial = f"arn:aws:iam::{ctx.account}:mfa{path}{name}"
    ctx.allow("iam:CreateVirtualMFADevice", serial)
    seed = new_seed()
    with ctx.db.write() as conn:
        if conn.execute("SELECT 1 FROM mfa_devices WHERE serial = ?", (serial,)).fetchone():
            raise _exists("MFADevice", name)
        conn.execute(
            "INSERT INTO mfa_devices (serial, name, seed, created) VALUES (?,?,?,?)",
            (serial, name, ctx.sealer.seal(seed, f"mfa:{serial}"), ctx.ts),
        )
    return {"VirtualMFADevice": {"SerialNumber": serial, "Base32StringSeed": base32(seed).encode()}}


def _device(ctx: Ctx, serial: str) -> Any:
    row = ctx.db.one("SELECT * FROM mfa_devices WHERE serial = ?", serial)
    if row is None:
        raise _no_such("MFA device", serial)
    return row


@op("EnableMFADevice")
def enable_mfa_device(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    user = _target_user(ctx, p, "iam:EnableMFADevice")
    device = _device(ctx, str(p.get("SerialNumber", "")))
    if device["user_name"] is not None:
        raise _exists("MFADevice", device["name"])
    seed = ctx.sealer.open(device["seed"], f"mfa:{device['serial']}")
    code1, code2 = str(p.get("AuthenticationCode1", "")), str(p.get("AuthenticationCode2", ""))
    # Two consecutive codes prove the device is in sync; like every use of the device, they
    # must be for time steps after the last one it accepted.
    last = device["last_step"]
    step = accepted_step(seed, code2, ctx.ts, last)
    in_sync = step is not None and accepted_step(seed, code1, (step - 1) * STEP, last) == step - 1
    with ctx.db.write() as conn:
        claimed = (
            in_sync
            and conn.execute(
                "UPDATE mfa_devices SET user_name = ?, enabled = ?, last_step = ? WHERE serial = ? "
                "AND user_name IS NULL AND (last_step IS NULL OR last_step < ?)",
                (user["name"], ctx.ts, step, device["serial"], step),
            ).rowcount
        )
    if not claimed:
        raise Fault(
            "InvalidAuthenticationCode", "Authentication code for device is not valid.", 403
        )
    return {}


@op("ListMFADevices")
def list_mfa_devices(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    user = _target_user(ctx, p, "iam:ListMFADevices")
    rows = ctx.db.all("SELECT * FROM mfa_devices WHERE user_name = ?", user["name"])
    return _page(
        p,
        "MFADevices",
        [
            {
                "UserName": r["user_name"],
                "SerialNumber": r["serial"],
                "EnableDate": _dt(r["enabled"]),
            }
            for r in rows
        ],
    )


@op("DeactivateMFADevice")
def deactivate_mfa_device(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    user = _target_user(ctx, p, "iam:DeactivateMFADevice")
    device = _device(ctx, str(p.get("SerialNumber", "")))
    if device["user_name"] != user["name"]:
        raise _no_such("MFA device", device["serial"])
    with ctx.db.write() as conn:
        conn.execute(
            "UPDATE mfa_devices SET user_name = NULL, enabled = NULL WHERE serial = ?",
            (device["serial"],),
        )
    return {}
