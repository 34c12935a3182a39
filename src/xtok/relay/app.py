"""The relay's HTTP API (docs/relay-api.md): a mailbox that learns nothing usable.

Runs post request codes (admitted by their CI's OIDC token or a relay key) and wait; approvers,
logged in by a signed GetCallerIdentity, list, answer or deny. The relay checks what it can to
refuse junk early, but nobody has to trust it: approvers verify the proof themselves and runs
open only tokens sealed to their own key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import secrets
import time
import unicodedata
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xtok.approval import oidc
from xtok.approval.request import RequestCode
from xtok.approval.seal import SealedToken
from xtok.errors import (
    AccessDenied,
    CredentialsRejected,
    Error,
    NetworkError,
    TokenError,
)
from xtok.relay import callers, notify
from xtok.relay.store import Store, digest_of

API = 1
BODY_LIMIT = 64 * 1024
MAX_WAIT = 60
SESSION_LIFE = 900
PENDING_PER_POSTER = 20
POSTS_PER_ADDRESS = 60
REASON_LIMIT = 200
_ID = re.compile(r"[0-9a-f]{16}")
ISSUERS_ENV = "XTOK_RELAY_ISSUERS"


@dataclass(frozen=True)
class RelayConfig:
    public_url: str
    approvers: tuple[str, ...]
    sts_url: str = callers.AWS_STS_URL
    trust: oidc.Trust = field(default_factory=oidc.Trust)
    run_keys: Mapping[str, str] = field(default_factory=dict)  # sha256 hex -> name
    open_posting: bool = False  # dev only: unauthenticated runs may post (unproven)
    posts_per_minute: int = 10  # per poster
    logins_per_minute: int = 30  # per client address
    max_wait: int = 12 * 3600  # a request expires after its lifetime or this, the shorter
    notify: notify.NotifyConfig = field(default_factory=notify.NotifyConfig)


class Failure(Exception):
    def __init__(self, status: int, code: str, message: str, retry: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry = status, code, message, retry


def _failure_for(exc: Error) -> Failure:
    status, code = {
        CredentialsRejected: (401, "unauthenticated"),
        oidc.ProofRefused: (401, "unauthenticated"),
        AccessDenied: (403, "forbidden"),
        NetworkError: (502, "upstream_unavailable"),
    }.get(type(exc), (400, "bad_request"))
    return Failure(status, code, exc.message)


class Limiter:
    """At most `limit` events per key in any 60 s."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def hit(self, key: str, now: float) -> None:
        window = self._seen[key]
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.limit:
            raise Failure(429, "rate_limited", "too many requests", retry=int(window[0] + 61 - now))
        window.append(now)


class Relay:
    def __init__(self, store: Store, config: RelayConfig, clock: Callable[[], float] = time.time):
        self.store, self.config, self.clock = store, config, clock
        self.posts = Limiter(config.posts_per_minute)
        self.logins = Limiter(config.logins_per_minute)
        self.addresses = Limiter(POSTS_PER_ADDRESS)
        self.notifier = notify.Notifier(config.notify)
        self._changed = asyncio.Event()

    def now(self) -> int:
        return int(self.clock())

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def _sweep(self) -> None:
        if self.store.sweep(self.now()):
            self._notify()

    # -- run side --------------------------------------------------------------------------

    async def post_request(self, request: Request) -> Response:
        body = await _json(request)
        text, proof = body.get("request"), body.get("proof")
        if not isinstance(text, str) or not (proof is None or isinstance(proof, str)):
            raise Failure(400, "bad_request", "request must be a string, proof a string or null")
        try:
            code = RequestCode.parse(text)
        except TokenError as exc:
            raise Failure(400, "bad_request", exc.message) from None
        if not _ID.fullmatch(code.id):
            raise Failure(400, "bad_request", "the request id is not 16 hex digits")
        # Per address before any proof check: unknown key ids make the relay fetch JWKS.
        self.addresses.hit(request.client.host if request.client else "?", self.clock())
        poster = await self._poster(request, code, proof)
        now = self.now()
        self.posts.hit(poster["poster"], now)
        if self.store.pending_count(poster["poster"]) >= PENDING_PER_POSTER:
            raise Failure(429, "rate_limited", "too many pending requests", retry=60)
        wait_secret = secrets.token_urlsafe(32)
        expires = now + min(code.duration, self.config.max_wait)
        row = {
            "id": code.id,
            "code": text.strip(),
            "proof": proof,
            "digest": code.digest().hex(),
            **poster,
            "created": now,
            "expires": expires,
            "state": "pending",
            "wait_hash": digest_of(wait_secret),
        }
        if not self.store.add(row):
            raise Failure(409, "conflict", "a request with this id exists")
        self._notify()
        self.notifier.new_request(notify.facts(code, poster, self.config.public_url, expires))
        return JSONResponse(
            {"id": code.id, "expires": expires, "wait_secret": wait_secret}, status_code=201
        )

    async def _poster(
        self, request: Request, code: RequestCode, proof: str | None
    ) -> dict[str, Any]:
        if proof:
            try:
                verified = await run_in_threadpool(
                    oidc.verify, proof, code, self.config.trust, self.store
                )
            except oidc.ProofReplayed as exc:
                raise Failure(409, "conflict", exc.message) from None
            except Error as exc:
                raise _failure_for(exc) from None
            subject = str(verified.claims.get("sub", ""))
            return {
                "poster": f"oidc:{verified.issuer}:{subject}",
                "poster_kind": "oidc",
                "poster_issuer": verified.issuer,
                "poster_subject": subject,
            }
        bearer = _bearer(request)
        name = self.config.run_keys.get(digest_of(bearer)) if bearer else None
        if name is not None:
            return {"poster": f"key:{name}", "poster_kind": "key", "poster_subject": name}
        if self.config.open_posting and not bearer:
            host = request.client.host if request.client else "?"
            return {"poster": f"open:{host}", "poster_kind": "open", "poster_subject": host}
        raise Failure(401, "unauthenticated", "post with the CI's OIDC token or a relay key")

    def _own(self, request: Request, rid: str) -> dict[str, Any]:
        row = self.store.get(rid) if _ID.fullmatch(rid) else None
        bearer = _bearer(request)
        if (
            row is None
            or not bearer
            or not hmac.compare_digest(digest_of(bearer), row["wait_hash"])
        ):
            raise Failure(404, "not_found", "no such request")
        return row

    async def wait_answer(self, request: Request) -> Response:
        rid = request.path_params["id"]
        wait = _int(request.query_params.get("wait", "0"), 0, MAX_WAIT)
        deadline = self.clock() + wait
        while True:
            self._sweep()
            row = self._own(request, rid)
            left = deadline - self.clock()
            if row["state"] != "pending" or left <= 0:
                break
            await self._wait_change(min(left, 1.0))
        answer: dict[str, Any] = {"state": row["state"]}
        if row["state"] == "pending":
            answer["expires"] = row["expires"]
        if row["state"] in ("approved", "denied"):
            answer["approver"] = row["approver"]
        if row["state"] == "approved":
            answer["sealed"] = row["sealed"]
            if row["sealed"]:
                self.store.take_sealed(rid)
        if row["state"] == "denied":
            answer["reason"] = row["reason"]
        return JSONResponse(answer)

    async def refresh_proof(self, request: Request) -> Response:
        """A waiting run replaces its proof with a fresh one (GitHub's ID tokens live 5
        minutes): same request key, same CI identity."""
        row = self._own(request, request.path_params["id"])
        body = await _json(request)
        proof = body.get("proof")
        if not isinstance(proof, str) or not proof:
            raise Failure(400, "bad_request", "proof must be a JWT")
        if row["state"] != "pending":
            raise Failure(409, "conflict", "the request is no longer pending")
        poster = await self._poster(request, RequestCode.parse(row["code"]), proof)
        if poster["poster"] != row["poster"]:
            raise Failure(403, "forbidden", "the new proof names another CI identity")
        self.store.set_proof(row["id"], proof)
        return Response(status_code=204)

    async def cancel(self, request: Request) -> Response:
        row = self._own(request, request.path_params["id"])
        if self.store.finish(row["id"], "cancelled", self.now()):
            self._notify()
        return Response(status_code=204)

    # -- approver side ---------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        host = request.client.host if request.client else "?"
        self.logins.hit(host, self.clock())
        body = await _json(request)
        try:
            url, headers, payload = callers.check_proof(
                body, self.config.sts_url, self.config.public_url
            )
            arn = await run_in_threadpool(callers.caller_arn, url, headers, payload)
            callers.check_allowed(arn, self.config.approvers)
        except Error as exc:
            raise _failure_for(exc) from None
        session = secrets.token_urlsafe(32)
        expires = self.now() + SESSION_LIFE
        self.store.add_session(session, arn, expires)
        return JSONResponse({"session": session, "arn": arn, "expires": expires})

    def _approver(self, request: Request) -> str:
        bearer = _bearer(request)
        arn = self.store.session_arn(bearer, self.now()) if bearer else None
        if arn is None:
            raise Failure(401, "unauthenticated", "log in first (POST /v1/session)")
        return arn

    async def listing(self, request: Request) -> Response:
        self._approver(request)
        self._sweep()
        state = request.query_params.get("state", "pending")
        if state not in ("pending", "all"):
            raise Failure(400, "bad_request", "state must be pending or all")
        rows = self.store.listing(pending_only=state == "pending")
        return JSONResponse({"requests": [_public(r) for r in rows]})

    async def one(self, request: Request) -> Response:
        self._approver(request)
        self._sweep()
        return JSONResponse(_public(self._find(request.path_params["id"])))

    def _find(self, rid: str) -> dict[str, Any]:
        row = self.store.get(rid) if _ID.fullmatch(rid) else None
        if row is None:
            raise Failure(404, "not_found", "no such request")
        return row

    async def answer(self, request: Request) -> Response:
        arn = self._approver(request)
        self._sweep()
        row = self._find(request.path_params["id"])
        body = await _json(request)
        fields: dict[str, Any]
        if isinstance(body.get("approve"), dict):
            fields = {"sealed": _checked_sealed(body["approve"].get("sealed"), row)}
            state = "approved"
        elif isinstance(body.get("deny"), dict):
            fields = {"reason": _checked_reason(body["deny"].get("reason"))}
            state = "denied"
        else:
            raise Failure(400, "bad_request", "answer with approve.sealed or deny.reason")
        if row["state"] == "expired":
            raise Failure(410, "expired", "the request has expired")
        if not self.store.finish(row["id"], state, self.now(), approver=arn, **fields):
            raise Failure(409, "conflict", "the request is no longer pending")
        self._notify()
        return JSONResponse(_public(self._find(row["id"])))

    async def events(self, request: Request) -> Response:
        self._approver(request)
        after = _int(request.query_params.get("after", "0"), 0, 2**62)
        wait = _int(request.query_params.get("wait", "0"), 0, MAX_WAIT)
        deadline = self.clock() + wait
        while True:
            self._sweep()
            found = self.store.events(after)
            left = deadline - self.clock()
            if found or left <= 0:
                break
            await self._wait_change(min(left, 1.0))
        return JSONResponse({"events": found, "next": found[-1]["seq"] if found else after})

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "relay": "xtok",
                "api": API,
                "url": self.config.public_url,
                "sts_url": self.config.sts_url,
                "max_wait": MAX_WAIT,
            }
        )


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    poster: dict[str, Any] = {"kind": row["poster_kind"]}
    if row["poster_issuer"]:
        poster["issuer"] = row["poster_issuer"]
    poster["subject"] = row["poster_subject"]
    return {
        "id": row["id"],
        "state": row["state"],
        "request": row["code"],
        "proof": row["proof"],
        "poster": poster,
        "created": row["created"],
        "expires": row["expires"],
        "answered": row["answered"],
        "approver": row["approver"],
        "reason": row["reason"],
    }


def _checked_sealed(text: Any, row: Mapping[str, Any]) -> str:
    if not isinstance(text, str):
        raise Failure(400, "bad_request", "approve.sealed must be a sealed token")
    try:
        sealed = SealedToken.parse(text)
    except TokenError as exc:
        raise Failure(400, "bad_request", exc.message) from None
    if sealed.request_id != row["id"] or sealed.digest.hex() != row["digest"]:
        raise Failure(400, "bad_request", "the sealed token answers another request")
    return text.strip()


def _checked_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_LIMIT:
        raise Failure(400, "bad_request", f"deny.reason must be 1-{REASON_LIMIT} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in reason):
        raise Failure(400, "bad_request", "deny.reason must be one line of printable text")
    return reason.strip()


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _int(text: str, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(text)))
    except ValueError:
        raise Failure(400, "bad_request", "expected an integer") from None


async def _json(request: Request) -> dict[str, Any]:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > BODY_LIMIT:
            raise Failure(413, "too_large", f"body over {BODY_LIMIT} bytes")
    try:
        body = json.loads(data)
    except ValueError:
        raise Failure(400, "bad_request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Failure(400, "bad_request", "the body is not a JSON object")
    return body


def asgi_app(relay: Relay) -> Starlette:
    def handle(fn: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except Failure as exc:
                headers = {"Retry-After": str(max(1, exc.retry))} if exc.retry else None
                return JSONResponse(
                    {"error": {"code": exc.code, "message": exc.message}},
                    status_code=exc.status,
                    headers=headers,
                )

        return endpoint

    r = relay
    return Starlette(
        routes=[
            Route("/v1/info", handle(r.info), methods=["GET"]),
            Route("/v1/requests", handle(r.post_request), methods=["POST"]),
            Route("/v1/requests", handle(r.listing), methods=["GET"]),
            Route("/v1/requests/{id}", handle(r.one), methods=["GET"]),
            Route("/v1/requests/{id}", handle(r.cancel), methods=["DELETE"]),
            Route("/v1/requests/{id}/proof", handle(r.refresh_proof), methods=["PUT"]),
            Route("/v1/requests/{id}/answer", handle(r.wait_answer), methods=["GET"]),
            Route("/v1/requests/{id}/answer", handle(r.answer), methods=["POST"]),
            Route("/v1/session", handle(r.login), methods=["POST"]),
            Route("/v1/events", handle(r.events), methods=["GET"]),
        ]
    )


def create(config: RelayConfig, db: Path | str, keep: int = 3600) -> Starlette:
    """The relay's ASGI app on a SQLite file (created if absent)."""
    return asgi_app(Relay(Store(db, keep=keep), config))


def dev_config(endpoint_url: str, account: str, env: Mapping[str, str]) -> RelayConfig:
    """The relay that `xtok server --dev` serves under /relay: approvers are the endpoint's own
    identities (checked through its own STS), runs may post unauthenticated (unproven), and
    $XTOK_RELAY_ISSUERS adds trusted OIDC issuers (e.g. a local stand-in)."""
    extra = tuple(env.get(ISSUERS_ENV, "").split())
    return RelayConfig(
        public_url=endpoint_url.rstrip("/") + "/relay",
        approvers=(f"arn:aws:*::{account}:*",),
        sts_url=endpoint_url,
        trust=oidc.Trust(issuers=(*oidc.DEFAULT_ISSUERS, *extra)),
        open_posting=True,
    )
