"""Role trust policies name IAM users and roles by unique id, as AWS stores them.

When a trust policy is saved, each user or role ARN of this account in its `AWS` principals is
replaced by that principal's unique id (AIDA…/AROA…), and an ARN that names nobody is refused.
A user or role deleted and re-created under the same name is therefore not trusted; reading the
policy back shows the ARN again while the principal exists, its bare id once it is gone.
"""

from __future__ import annotations

import json
import re
from typing import Any

from xtok.server.db import Database
from xtok.server.faults import Fault
from xtok.server.policydoc import Document, statements

_IAM_ARN = re.compile(r"^arn:aws:iam::(\d{12}):(user|role)(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]+)$")
_UNIQUE_ID = re.compile(r"^(AIDA|AROA)[A-Z0-9]{16}$")
_BY_NAME = {
    "user": "SELECT user_id AS id, path FROM users WHERE name = ?",
    "role": "SELECT role_id AS id, path FROM roles WHERE name = ?",
}
_BY_ID = {
    "AIDA": ("user", "SELECT name, path FROM users WHERE user_id = ?"),
    "AROA": ("role", "SELECT name, path FROM roles WHERE role_id = ?"),
}


def bind(db: Database, account: str, doc: Document) -> str:
    """The trust policy as stored: local user and role ARNs replaced by unique ids."""

    def unique_id(arn: str) -> str:
        match = _IAM_ARN.match(arn)
        if match is None or match[1] != account:
            return arn  # the account, a session, another account: kept as written
        row = db.one(_BY_NAME[match[2]], match[4])
        if row is None or row["path"] != match[3]:
            raise Fault(
                "MalformedPolicyDocument",
                f'Invalid principal in policy: "AWS":"{arn}"',
                400,
                "MalformedPolicyDocumentException",
            )
        return str(row["id"])

    _rewrite(doc, unique_id)
    return json.dumps(doc)


def shown(db: Database, account: str, stored: str) -> str:
    """The stored trust policy as IAM returns it: ids of existing principals as ARNs."""

    def arn(value: str) -> str:
        kind_query = _BY_ID.get(value[:4]) if _UNIQUE_ID.match(value) else None
        row = db.one(kind_query[1], value) if kind_query else None
        if kind_query is None or row is None:
            return value
        return f"arn:aws:iam::{account}:{kind_query[0]}{row['path']}{row['name']}"

    doc = json.loads(stored)
    _rewrite(doc, arn)
    return json.dumps(doc)


def _rewrite(doc: Document, change: Any) -> None:
    for st in statements(doc):
        for key in ("Principal", "NotPrincipal"):
            principal = st.get(key)
            if isinstance(principal, dict) and "AWS" in principal:
                names = principal["AWS"]
                principal["AWS"] = (
                    [change(n) for n in names] if isinstance(names, list) else change(names)
                )
