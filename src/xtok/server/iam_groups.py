"""IAM groups: membership, and the inline policies a group gives its members."""

from __future__ import annotations

from typing import Any

from xtok.server import iam
from xtok.server.faults import Fault
from xtok.server.ops import Ctx, Handler, random_id, register_into

OPERATIONS: dict[str, Handler] = {}
op = register_into(OPERATIONS)


def group_arn(ctx: Ctx, row: Any) -> str:
    return f"arn:aws:iam::{ctx.account}:group{row['path']}{row['name']}"


def target_group(ctx: Ctx, p: dict[str, Any], action: str) -> Any:
    """The group named by GroupName, after authorizing `action` on its ARN (path included);
    a group that does not exist is authorized by name, so a denied caller learns nothing."""
    name = iam._name(p, "GroupName")
    row = ctx.db.one("SELECT * FROM groups WHERE name = ?", name)
    arn = group_arn(ctx, row) if row else f"arn:aws:iam::{ctx.account}:group/{name}"
    ctx.allow(action, arn, shown=f"group {name}")  # as for users and roles: no path, no hint
    if row is None:
        raise iam._no_such("group", name)
    return row


def _group_out(ctx: Ctx, row: Any) -> dict[str, Any]:
    return {
        "Path": row["path"],
        "GroupName": row["name"],
        "GroupId": row["group_id"],
        "Arn": group_arn(ctx, row),
        "CreateDate": iam._dt(row["created"]),
    }


@op("CreateGroup")
def create_group(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    name, path = iam._name(p, "GroupName"), iam._path(p)
    ctx.allow("iam:CreateGroup", f"arn:aws:iam::{ctx.account}:group{path}{name}")
    with ctx.db.write() as conn:
        if conn.execute("SELECT 1 FROM groups WHERE name = ?", (name,)).fetchone():
            raise iam._exists("Group", name)
        conn.execute("INSERT INTO groups VALUES (?,?,?,?)", (name, random_id("AGPA"), path, ctx.ts))
    row = ctx.db.one("SELECT * FROM groups WHERE name = ?", name)
    return {"Group": _group_out(ctx, row)}


@op("GetGroup")
def get_group(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = target_group(ctx, p, "iam:GetGroup")
    users = ctx.db.all(
        "SELECT u.* FROM users u JOIN group_members m ON m.user_name = u.name "
        "WHERE m.group_name = ? ORDER BY u.name",
        row["name"],
    )
    page = iam._page(p, "Users", [iam._user_out(ctx, u) for u in users])
    return {"Group": _group_out(ctx, row), **page}


@op("ListGroups")
def list_groups(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.allow("iam:ListGroups", f"arn:aws:iam::{ctx.account}:group/")
    rows = ctx.db.all("SELECT * FROM groups ORDER BY name")
    prefix = str(p.get("PathPrefix") or "/")
    return iam._page(
        p, "Groups", [_group_out(ctx, r) for r in rows if str(r["path"]).startswith(prefix)]
    )


@op("DeleteGroup")
def delete_group(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    row = target_group(ctx, p, "iam:DeleteGroup")
    with ctx.db.write() as conn:
        if conn.execute(
            "SELECT 1 FROM group_members WHERE group_name = :n UNION ALL "
            "SELECT 1 FROM inline_policies WHERE kind = 'group' AND owner = :n UNION ALL "
            "SELECT 1 FROM attachments WHERE kind = 'group' AND owner = :n",
            {"n": row["name"]},
        ).fetchone():
            raise Fault(
                "DeleteConflict",
                "Cannot delete entity, must remove users, policies and attached policies first.",
                409,
            )
        conn.execute("DELETE FROM groups WHERE name = ?", (row["name"],))
    return {}


def _member(ctx: Ctx, p: dict[str, Any], action: str) -> tuple[Any, Any]:
    group = target_group(ctx, p, action)
    return group, iam._user(ctx, iam._name(p, "UserName"))


@op("AddUserToGroup")
def add_user_to_group(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    group, user = _member(ctx, p, "iam:AddUserToGroup")
    with ctx.db.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO group_members VALUES (?, ?)", (group["name"], user["name"])
        )
    return {}


@op("RemoveUserFromGroup")
def remove_user_from_group(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    group, user = _member(ctx, p, "iam:RemoveUserFromGroup")
    with ctx.db.write() as conn:
        gone = conn.execute(
            "DELETE FROM group_members WHERE group_name = ? AND user_name = ?",
            (group["name"], user["name"]),
        ).rowcount
    if not gone:
        raise iam._no_such("user", f"{user['name']} in group {group['name']}")
    return {}


@op("ListGroupsForUser")
def list_groups_for_user(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    user = iam._target_user(ctx, p, "iam:ListGroupsForUser")
    rows = ctx.db.all(
        "SELECT g.* FROM groups g JOIN group_members m ON m.group_name = g.name "
        "WHERE m.user_name = ? ORDER BY g.name",
        user["name"],
    )
    return iam._page(p, "Groups", [_group_out(ctx, r) for r in rows])


OPERATIONS.update(iam.inline_policy_operations("group", "Group", target_group))
