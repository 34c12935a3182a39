"""Resource tags (IAM users and roles, secrets): validated as AWS does, stored per resource."""

from __future__ import annotations

import re
from typing import Any

from xtok.server.conditions import ContextValue
from xtok.server.db import Database
from xtok.server.faults import Fault

MAX_TAGS = 50
# IAM user and role tag keys are case-insensitive (case preserved): `team` replaces `Team`, as
# their aws:PrincipalTag/* keys are one. Secret tag keys are case-sensitive.
_FOLDED = frozenset({"user", "role"})
# Letters and digits in any script, space and _.:/=+-@ (IAM and Secrets Manager; no controls).
_TEXT = re.compile(r"^[\w .:/=+\-@]*$")


def parse(raw: Any, fault: Fault, *, folded: bool = False) -> dict[str, str]:
    """A `Tags` parameter ([{Key, Value}]) as a dict; `fault` is raised for an invalid one,
    and with `folded` (case-insensitive keys) for two keys that differ only in case."""
    if not isinstance(raw, list):
        raise fault
    tags: dict[str, str] = {}
    for item in raw:
        key = item.get("Key") if isinstance(item, dict) else None
        value = item.get("Value", "") if isinstance(item, dict) else None
        if not (isinstance(key, str) and isinstance(value, str)):
            raise fault
        if not (1 <= len(key) <= 128 and len(value) <= 256 and _TEXT.match(key + value)):
            raise fault
        if key.lower().startswith("aws:"):
            raise fault
        tags[key] = value
    if folded and len({k.lower() for k in tags}) != len(raw):
        raise fault
    return tags


def condition_keys(
    tag_keys: list[str], values: dict[str, str] | None = None
) -> dict[str, ContextValue]:
    """What a request that adds (`values`) or removes tags sets for conditions: `aws:TagKeys`
    and each `aws:RequestTag/KEY`, as AWS does on every tagging action; nothing without tags."""
    if not tag_keys:
        return {}
    found: dict[str, ContextValue] = {"aws:tagkeys": list(tag_keys)}
    found.update({f"aws:requesttag/{k.lower()}": v for k, v in (values or {}).items()})
    return found


def keys(raw: Any, fault: Fault) -> list[str]:
    """A `TagKeys` parameter."""
    if not isinstance(raw, list) or not all(isinstance(k, str) and k for k in raw):
        raise fault
    return list(raw)


def of(db: Database, kind: str, owner: str) -> dict[str, str]:
    rows = db.all(
        "SELECT key, value FROM tags WHERE kind = ? AND owner = ? ORDER BY key", kind, owner
    )
    return {r["key"]: r["value"] for r in rows}


def listed(db: Database, kind: str, owner: str) -> list[dict[str, str]] | None:
    """The tags in AWS's output shape, or None when there are none (the member is omitted)."""
    return [{"Key": k, "Value": v} for k, v in of(db, kind, owner).items()] or None


def add(conn: Any, kind: str, owner: str, tags: dict[str, str], limit_fault: Fault) -> None:
    """Add or overwrite tags (inside a write transaction); at most MAX_TAGS per resource."""
    if kind in _FOLDED:
        remove(conn, kind, owner, list(tags))
    for key, value in tags.items():
        conn.execute("INSERT OR REPLACE INTO tags VALUES (?,?,?,?)", (kind, owner, key, value))
    count = conn.execute(
        "SELECT count(*) FROM tags WHERE kind = ? AND owner = ?", (kind, owner)
    ).fetchone()[0]
    if count > MAX_TAGS:
        raise limit_fault


def remove(conn: Any, kind: str, owner: str, tag_keys: list[str] | None = None) -> None:
    """Remove the given keys, or every tag of the resource (when it is deleted)."""
    if tag_keys is None:
        conn.execute("DELETE FROM tags WHERE kind = ? AND owner = ?", (kind, owner))
        return
    for key in tag_keys:
        conn.execute(
            "DELETE FROM tags WHERE kind = ?1 AND owner = ?2 "
            "AND (key = ?3 OR (?4 AND lower(key) = lower(?3)))",
            (kind, owner, key, kind in _FOLDED),
        )
