"""IAM managed policies: versions, and attaching them to users, roles and groups. Only
customer-managed policies of this account exist here; AWS-managed ones are not served."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from xtok.server import iam, iam_groups
from xtok.server.faults import Fault
from xtok.server.ops import Ctx, Handler, random_id, register_into
from xtok.server.policydoc import MANAGED_LIMIT, check_size, parse_document

OPERATIONS: dict[str, Handler] = {}
op = register_into(OPERATIONS)

MAX_VERSIONS = 5
MAX_ATTACHED = 10  # managed policies per user, role or group
_POLICY_ARN = re.compile(r"^arn:aws:iam::(\d{12}|aws):policy(/[\x21-\x7e]*)?/[\w+=,.@-]{1,128}$")
_POLICY_NAME = re.compile(r"^[\w+=,.@-]{1,128}$", re.ASCII)
# What managed policies attach to: each kind's noun and its authorizing lookup.
_HOLDERS: dict[str, tuple[str, iam.Target]] = {
    "user": iam.HOLDERS["user"],
    "role": iam.HOLDERS["role"],
    "group": ("Group", iam_groups.target_group),
}


def _no_such_policy(arn: str) -> Fault:
    return Fault("NoSuchEntity", f"Policy {arn} does not exist or is not attachable.", 404)


def _policy_arn(p: dict[str, Any]) -> str:
    arn = str(p.get("PolicyArn", ""))
    if not _POLICY_ARN.match(arn):
        raise Fault.invalid(f"ARN {arn} is not valid.")
    return arn


def _find(ctx: Ctx, p: dict[str, Any], action: str) -> Any:
    """The policy named by PolicyArn (exactly: another path or account is another policy),
    after authorizing `action` on that ARN."""
    arn = _policy_arn(p)
    ctx.allow(action, arn)
    row = ctx.db.one("SELECT * FROM managed_policies WHERE arn = ?", arn)
    if row is None:
        raise _no_such_policy(arn)
    return row


def _document(p: dict[str, Any]) -> str:
    text = str(p.get("PolicyDocument", ""))
    doc = parse_document(text)
    check_size(text, MANAGED_LIMIT, f"Cannot exceed quota for PolicySize: {MANAGED_LIMIT}")
    return json.dumps(doc)


def _policy_out(ctx: Ctx, row: Any, *, full: bool = False) -> dict[str, Any]:
    count = ctx.db.one("SELECT count(*) AS n FROM attachments WHERE policy_arn = ?", row["arn"])
    out = {
        "PolicyName": row["name"],
        "PolicyId": row["policy_id"],
        "Arn": row["arn"],
        "Path": row["path"],
        "DefaultVersionId": row["default_version"],
        "AttachmentCount": count["n"] if count else 0,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": iam._dt(row["created"]),
        "UpdateDate": iam._dt(row["updated"]),
    }
    if full:
        out["Description"] = row["description"]
    return out


def _version_out(row: Any, default: str, *, document: bool) -> dict[str, Any]:
    return {
        "Document": quote(row["document"]) if document else None,
        "VersionId": row["version_id"],
        "IsDefaultVersion": row["version_id"] == default,
        "CreateDate": iam._dt(row["created"]),
    }


@op("CreatePolicy")
def create_policy(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    name, path = str(p.get("PolicyName", "")), iam._path(p)
    if not _POLICY_NAME.match(name):
        raise Fault.invalid("PolicyName must be 1-128 characters of [\\w+=,.@-]")
    arn = f"arn:aws:iam::{ctx.account}:policy{path}{name}"
    ctx.allow("iam:CreatePolicy", arn)
    document = _document(p)
    with ctx.db.write() as conn:
        if conn.execute("SELECT 1 FROM managed_policies WHERE name = ?", (name,)).fetchone():
            raise Fault(
                "EntityAlreadyExists",
                f"A policy called {name} already exists. Duplicate names are not allowed.",
                409,
            )
        conn.execute(
            "INSERT INTO managed_policies VALUES (?,?,?,?,?,?,?,?,?)",
            (arn, name, random_id("ANPA"), path, p.get("Description"), "v1", 2, ctx.ts, ctx.ts),
        )
        conn.execute("INSERT INTO policy_versions VALUES (?,?,?,?)", (arn, "v1", document, ctx.ts))
    return {
        "Policy": _policy_out(ctx, ctx.db.one("SELECT * FROM managed_policies WHERE arn = ?", arn))
    }


@op("GetPolicy")
def get_policy(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return {"Policy": _policy_out(ctx, _find(ctx, p, "iam:GetPolicy"), full=True)}


@op("ListPolicies")
def list_policies(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.allow("iam:ListPolicies", "*")
    scope = p.get("Scope", "All")
    if scope not in ("All", "AWS", "Local"):
        raise Fault.invalid("Scope must be All, AWS or Local")
    rows = [] if scope == "AWS" else ctx.db.all("SELECT * FROM managed_policies ORDER BY name")
    prefix = str(p.get("PathPrefix") or "/")
    policies = [_policy_out(ctx, r) for r in rows if str(r["path"]).startswith(prefix)]
    if p.get("OnlyAttached"):
        policies = [x for x in policies if x["AttachmentCount"]]
    return iam._page(p, "Policies", policies)


@op("DeletePolicy")
def delete_policy(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, p, "iam:DeletePolicy")
    with ctx.db.write() as conn:
        if conn.execute(
            "SELECT 1 FROM attachments WHERE policy_arn = :a UNION ALL "
            "SELECT 1 FROM policy_versions WHERE arn = :a AND version_id != :v",
            {"a": row["arn"], "v": row["default_version"]},
        ).fetchone():
            raise Fault(
                "DeleteConflict",
                "Cannot delete a policy attached to entities or with non-default versions.",
                409,
            )
        conn.execute("DELETE FROM policy_versions WHERE arn = ?", (row["arn"],))
        conn.execute("DELETE FROM managed_policies WHERE arn = ?", (row["arn"],))
    return {}


@op("CreatePolicyVersion")
def create_policy_version(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, p, "iam:CreatePolicyVersion")
    document = _document(p)
    default = bool(p.get("SetAsDefault"))
    with ctx.db.write() as conn:
        fresh = conn.execute("SELECT * FROM managed_policies WHERE arn = ?", (row["arn"],))
        row = fresh.fetchone()
        count = conn.execute(
            "SELECT count(*) FROM policy_versions WHERE arn = ?", (row["arn"],)
        ).fetchone()[0]
        if count >= MAX_VERSIONS:
            raise Fault(
                "LimitExceeded",
                f"A managed policy can have up to {MAX_VERSIONS} versions. "
                "Delete a version before you create a new one.",
                409,
            )
        version = f"v{row['next_version']}"
        conn.execute(
            "INSERT INTO policy_versions VALUES (?,?,?,?)", (row["arn"], version, document, ctx.ts)
        )
        conn.execute(
            "UPDATE managed_policies SET next_version = next_version + 1, updated = ?, "
            "default_version = CASE WHEN ? THEN ? ELSE default_version END WHERE arn = ?",
            (ctx.ts, default, version, row["arn"]),
        )
        stored = conn.execute(
            "SELECT * FROM policy_versions WHERE arn = ? AND version_id = ?", (row["arn"], version)
        ).fetchone()
    current = version if default else row["default_version"]
    return {"PolicyVersion": _version_out(stored, current, document=False)}


def _version(ctx: Ctx, row: Any, p: dict[str, Any]) -> Any:
    version = ctx.db.one(
        "SELECT * FROM policy_versions WHERE arn = ? AND version_id = ?",
        row["arn"],
        str(p.get("VersionId", "")),
    )
    if version is None:
        raise Fault(
            "NoSuchEntity", f"Policy {row['arn']} version {p.get('VersionId')} does not exist.", 404
        )
    return version


@op("GetPolicyVersion")
def get_policy_version(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, p, "iam:GetPolicyVersion")
    version = _version(ctx, row, p)
    return {"PolicyVersion": _version_out(version, row["default_version"], document=True)}


@op("ListPolicyVersions")
def list_policy_versions(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, p, "iam:ListPolicyVersions")
    rows = ctx.db.all(
        "SELECT * FROM policy_versions WHERE arn = ? ORDER BY created DESC, version_id DESC",
        row["arn"],
    )
    versions = [_version_out(v, row["default_version"], document=False) for v in rows]
    return iam._page(p, "Versions", versions)


@op("DeletePolicyVersion")
def delete_policy_version(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, p, "iam:DeletePolicyVersion")
    version = _version(ctx, row, p)
    if version["version_id"] == row["default_version"]:
        raise Fault("DeleteConflict", "Cannot delete the default version of a policy.", 409)
    with ctx.db.write() as conn:
        conn.execute(
            "DELETE FROM policy_versions WHERE arn = ? AND version_id = ?",
            (row["arn"], version["version_id"]),
        )
    return {}


@op("SetDefaultPolicyVersion")
def set_default_policy_version(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, p, "iam:SetDefaultPolicyVersion")
    version = _version(ctx, row, p)
    with ctx.db.write() as conn:
        conn.execute(
            "UPDATE managed_policies SET default_version = ?, updated = ? WHERE arn = ?",
            (version["version_id"], ctx.ts, row["arn"]),
        )
    return {}


@op("ListEntitiesForPolicy")
def list_entities_for_policy(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = _find(ctx, p, "iam:ListEntitiesForPolicy")
    attached = ctx.db.all(
        "SELECT a.kind, a.owner, coalesce(u.user_id, r.role_id, g.group_id) AS id "
        "FROM attachments a LEFT JOIN users u ON a.kind = 'user' AND u.name = a.owner "
        "LEFT JOIN roles r ON a.kind = 'role' AND r.name = a.owner "
        "LEFT JOIN groups g ON a.kind = 'group' AND g.name = a.owner "
        "WHERE a.policy_arn = ? ORDER BY a.owner",
        row["arn"],
    )
    out: dict[str, Any] = {"IsTruncated": False}
    for kind, (noun, _) in _HOLDERS.items():
        out[f"Policy{noun}s"] = [
            {f"{noun}Name": a["owner"], f"{noun}Id": a["id"]} for a in attached if a["kind"] == kind
        ]
    return out


# --- attaching (users, roles and groups alike) --------------------------------------------------


def _attach_target(ctx: Ctx, p: dict[str, Any], kind: str, verb: str) -> tuple[str, Any]:
    """The policy ARN and the entity's row, with `verb` authorized on the entity; the policy
    ARN is the request's iam:PolicyARN condition key."""
    arn = _policy_arn(p)
    ctx.request_keys["iam:policyarn"] = arn
    noun, target = _HOLDERS[kind]
    key = f"{noun}Name"
    if not p.get(key):
        raise Fault.invalid(f"{key} is required")
    return arn, target(ctx, p, f"iam:{verb}{noun}Policy")


def _attach(kind: str) -> Handler:
    def attach(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        arn, owner = _attach_target(ctx, p, kind, "Attach")
        with ctx.db.write() as conn:
            if not conn.execute("SELECT 1 FROM managed_policies WHERE arn = ?", (arn,)).fetchone():
                raise _no_such_policy(arn)
            conn.execute(
                "INSERT OR IGNORE INTO attachments VALUES (?,?,?)", (kind, owner["name"], arn)
            )
            count = conn.execute(
                "SELECT count(*) FROM attachments WHERE kind = ? AND owner = ?",
                (kind, owner["name"]),
            ).fetchone()[0]
            if count > MAX_ATTACHED:
                raise Fault(
                    "LimitExceeded",
                    f"Cannot exceed quota for PoliciesPer{_HOLDERS[kind][0]}: {MAX_ATTACHED}",
                    409,
                )
        return {}

    return attach


def _detach(kind: str) -> Handler:
    def detach(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        arn, owner = _attach_target(ctx, p, kind, "Detach")
        with ctx.db.write() as conn:
            gone = conn.execute(
                "DELETE FROM attachments WHERE kind = ? AND owner = ? AND policy_arn = ?",
                (kind, owner["name"], arn),
            ).rowcount
        if not gone:
            raise Fault("NoSuchEntity", f"Policy {arn} was not found.", 404)
        return {}

    return detach


def _list_attached(kind: str) -> Handler:
    def list_(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        noun, target = _HOLDERS[kind]
        owner = target(ctx, p, f"iam:ListAttached{noun}Policies")
        rows = ctx.db.all(
            "SELECT m.name, m.arn, m.path FROM attachments a "
            "JOIN managed_policies m ON m.arn = a.policy_arn "
            "WHERE a.kind = ? AND a.owner = ? ORDER BY m.name",
            kind,
            owner["name"],
        )
        prefix = str(p.get("PathPrefix") or "/")
        attached = [
            {"PolicyName": r["name"], "PolicyArn": r["arn"]}
            for r in rows
            if str(r["path"]).startswith(prefix)
        ]
        return iam._page(p, "AttachedPolicies", attached)

    return list_


for _kind, (_noun, _) in _HOLDERS.items():
    OPERATIONS[f"Attach{_noun}Policy"] = _attach(_kind)
    OPERATIONS[f"Detach{_noun}Policy"] = _detach(_kind)
    OPERATIONS[f"ListAttached{_noun}Policies"] = _list_attached(_kind)
