"""The inbox's web app: a path secret guards every route, POSTs also need the page's CSRF token
and our own Origin, and every response carries a strict Content-Security-Policy.

The page is static; its script renders the JSON of `/api/state` with text nodes only (and the
CSP's Trusted Types forbid HTML sinks), so no value from a request ever becomes markup.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xtok import display
from xtok.approval import oidc, review, seal
from xtok.approval.inbox.view import Viewer
from xtok.approval.relay_client import Relay
from xtok.approval.request import RequestCode
from xtok.aws.session import AwsConfig
from xtok.errors import AccessDenied, CredentialsRejected, Error, UsageError

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_STATIC = {"inbox.js": "text/javascript", "inbox.css": "text/css", "icon.svg": "image/svg+xml"}
REASON_LIMIT = 200
FORBIDDEN = Response("forbidden", status_code=403, media_type="text/plain")


class Inbox:
    """The approver's side: one relay session, renewed when it lapses; minting happens here."""

    def __init__(
        self, relay_url: str, aws: AwsConfig, mfa_serial: str | None, trust: oidc.Trust
    ) -> None:
        self.relay, self.aws, self.mfa_serial, self.trust = Relay(relay_url), aws, mfa_serial, trust
        self.history = review.History()
        self.viewer = Viewer(trust, self.history)
        self.arn = ""
        self._lock = threading.Lock()

    def login(self) -> str:
        with self._lock:
            self.arn = self.relay.login(self.aws)
        return self.arn

    def _call(self, fn: Callable[[Relay], Any]) -> Any:
        try:
            return fn(self.relay)
        except CredentialsRejected:  # the 15-minute relay session lapsed: log in again, once
            self.login()
            return fn(self.relay)

    def state(self, now: int) -> dict[str, Any]:
        answer = self._call(lambda r: r.call("GET", "/v1/requests?state=all"))
        items = answer.get("requests") if isinstance(answer, dict) else None
        shown = [self.viewer.entry(i, now) for i in items or [] if isinstance(i, dict)]
        return {
            "now": now,
            "relay": self.relay.url,
            "me": display.shown(self.arn),
            "mfa": self.mfa_serial is not None,
            "pending": [e for e in shown if e["state"] == "pending"],
            "done": [e for e in shown if e["state"] != "pending"],
        }

    def _pending(self, rid: str, digest: str) -> tuple[RequestCode, bool]:
        """The request, fetched again from the relay and checked here: never the page's copy.
        `digest` names the request the approver saw: a relay that swapped it since is refused
        (before its proof is checked, which may bind a fixed-audience token to its key)."""
        raw = self._call(lambda r: r.get(rid))
        if raw.get("state") != "pending":
            state = display.shown(raw.get("state"))
            raise UsageError(f"request {display.shown(rid)} is {state}")
        request = RequestCode.parse(str(raw.get("request", "")))
        if not hmac.compare_digest(request.digest().hex(), digest):
            raise AccessDenied(
                "the request changed on the relay since you opened it: nothing was minted",
                tip="reload the inbox and review it again",
            )
        if request.id != rid:
            raise AccessDenied("request refused: the relay listed it under another id")
        proof = raw.get("proof")
        if isinstance(proof, str) and proof:
            oidc.verify(proof, request, self.trust, oidc.FileSeen())
        elif self.trust.require_proof:
            raise oidc.ProofRefused("the request carries no OIDC proof and approver.toml needs one")
        return request, bool(proof)

    def approve(self, rid: str, digest: str, mfa_code: str | None) -> str:
        """Mint with this process's AWS identity, seal to the run's key, post the sealed token."""
        from datetime import UTC, datetime

        from xtok.aws.mint import mint

        request, proven = self._pending(rid, digest)
        if request.role is None:
            raise UsageError("the request names no role", tip="use `xtok approve --role ARN`")

        def no_code(serial: str) -> str:
            raise UsageError(f"an MFA code is needed for {serial}", tip="type the current code")

        req = review.mint_request(request, request.role, self.mfa_serial, mfa_code)
        creds = mint(self.aws, req, datetime.now(UTC), no_code)
        sealed = seal.seal(request, creds).encode()
        self._call(lambda r: r.approve(request.id, sealed))
        self.history.record(request, request.role, proven=proven)
        return f"approved: the sealed token went to the relay for request {request.id}"

    def deny(self, rid: str, reason: str) -> str:
        reason = reason.strip()
        if not reason or len(reason) > REASON_LIMIT or review.unsafe_characters(reason):
            raise UsageError(f"the reason must be one line of 1-{REASON_LIMIT} characters")
        self._call(lambda r: r.deny(rid, reason))
        return f"denied request {display.shown(rid)}"


def _asset(name: str) -> str:
    return resources.files("xtok.approval.inbox").joinpath("static", name).read_text("utf-8")


def create(inbox: Inbox, secret: str, csrf: str, origin: str, clock: Callable[[], float]) -> Any:
    """The guarded ASGI app; the page lives at `{origin}/{secret}/`."""
    page = _asset("inbox.html").replace("{{csrf}}", csrf)

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(_asset(name), media_type=_STATIC[name])

    async def state(request: Request) -> Response:
        return await _answer(lambda: inbox.state(int(clock())))

    async def approve(request: Request) -> Response:
        body = await _posted(request, csrf, origin)
        if body is None:
            return FORBIDDEN
        code = body.get("mfa_code")
        code = code.strip() if isinstance(code, str) and code.strip() else None
        digest, rid = str(body.get("digest", "")), request.path_params["id"]
        return await _answer(lambda: {"message": inbox.approve(rid, digest, code)})

    async def deny(request: Request) -> Response:
        body = await _posted(request, csrf, origin)
        if body is None:
            return FORBIDDEN
        reason = body.get("reason")
        rid = request.path_params["id"]
        return await _answer(lambda: {"message": inbox.deny(rid, str(reason or ""))})

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/static/{name}", static, methods=["GET"]),
            Route("/api/state", state, methods=["GET"]),
            Route("/api/requests/{id}/approve", approve, methods=["POST"]),
            Route("/api/requests/{id}/deny", deny, methods=["POST"]),
        ]
    )
    return Guard(app, secret, origin)


async def _posted(request: Request, csrf: str, origin: str) -> dict[str, Any] | None:
    """A state-changing call must come from our own page: our Origin, its CSRF token, JSON
    (None: refuse it)."""
    token = request.headers.get("x-xtok-csrf", "")
    if (
        request.headers.get("origin") != origin
        or not hmac.compare_digest(token.encode(), csrf.encode())
        or request.headers.get("content-type", "").split(";")[0] != "application/json"
    ):
        return None
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


async def _answer(fn: Callable[[], Any]) -> Response:
    try:
        return JSONResponse(await run_in_threadpool(fn))
    except Error as exc:
        return JSONResponse(
            {"error": display.shown(exc.message, 400), "tip": exc.tip or ""}, status_code=400
        )


class Guard:
    """Only `/{secret}/…` on our own Host reaches the app (DNS rebinding, other local users,
    other pages: 403); every response gets the security headers."""

    def __init__(self, app: Any, secret: str, origin: str) -> None:
        self.app, self.secret, self.host = app, secret.encode(), origin.split("://", 1)[1]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].decode() not in HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        head, slash, rest = scope["path"][1:].partition("/")
        host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        if host != self.host or not hmac.compare_digest(head.encode(), self.secret):
            await FORBIDDEN(scope, receive, secured)
            return
        if not slash:
            await Response(status_code=307, headers={"location": f"/{head}/"})(
                scope, receive, secured
            )
            return
        inner = {k: v for k, v in scope.items() if k != "raw_path"}
        await self.app({**inner, "path": "/" + rest}, receive, secured)
