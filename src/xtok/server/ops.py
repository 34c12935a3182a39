"""What an operation handler receives, and the registry of handlers per service."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xtok.server.auth import Caller, authorize
from xtok.server.conditions import ContextValue
from xtok.server.crypto import Sealer
from xtok.server.db import Database
from xtok.server.evaluation import Request


@dataclass(frozen=True)
class Settings:
    account: str
    region: str
    min_duration: int = 900  # below 900 s only in --dev mode


@dataclass
class Ctx:
    db: Database
    sealer: Sealer
    settings: Settings
    caller: Caller
    now: datetime
    request_keys: dict[str, ContextValue] = field(default_factory=dict)  # auth.request_keys
    resource: str = "*"  # for the audit log: what the operation touched

    def context(self, extra: dict[str, ContextValue] | None = None) -> dict[str, ContextValue]:
        """Every condition key of this request: the caller's, the request's and `extra`."""
        return {**self.caller.context(self.now), **self.request_keys, **(extra or {})}

    def allow(
        self,
        action: str,
        resource: str,
        extra: dict[str, ContextValue] | None = None,
        *,
        shown: str | None = None,
    ) -> None:
        """Authorize `action` on `resource`; a denial names `shown` (what the caller asked
        for) when given, so that it reveals nothing the caller may not see."""
        self.resource = resource
        authorize(self.db, self.caller, Request(action, resource, self.context(extra)), shown)

    @property
    def account(self) -> str:
        return self.settings.account

    @property
    def ts(self) -> float:
        return self.now.timestamp()


Handler = Callable[[Ctx, dict[str, Any]], dict[str, Any]]


def register_into(table: dict[str, Handler]) -> Callable[[str], Callable[[Handler], Handler]]:
    """`@op("GetSecretValue")` records a handler under its AWS operation name."""

    def op(name: str) -> Callable[[Handler], Handler]:
        def record(fn: Handler) -> Handler:
            table[name] = fn
            return fn

        return record

    return op


_UPPER = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 16) -> str:
    return prefix + "".join(secrets.choice(_UPPER) for _ in range(length))


def random_text(length: int, alphabet: str = _ALNUM + "/+") -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))
