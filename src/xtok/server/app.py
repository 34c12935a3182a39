"""The HTTP side: one endpoint that speaks STS, IAM (query protocol) and Secrets Manager (JSON),
authenticates every request, dispatches it, and records it in the audit log."""

from __future__ import annotations

import sys
import traceback
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from xtok.errors import Error
from xtok.server import audit, iam, iam_groups, iam_policies, secretsmanager, sigv4, sts, wire
from xtok.server.audit import AuditLog, Record, audit_key
from xtok.server.auth import Caller, identify, request_keys
from xtok.server.crypto import Sealer, new_key
from xtok.server.db import Database
from xtok.server.faults import Fault
from xtok.server.keyholders import KeyHolders
from xtok.server.ops import Ctx, Handler, Settings

MAX_BODY = 1 << 20
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
HANDLERS: dict[str, dict[str, Handler]] = {
    "sts": sts.OPERATIONS,
    "iam": iam.OPERATIONS | iam_groups.OPERATIONS | iam_policies.OPERATIONS,
    "secretsmanager": secretsmanager.OPERATIONS,
}
QUERY_SERVICES = ("sts", "iam")
UNKNOWN_ACTION = "(unknown)"  # recorded for an operation name no served service has
IAM_SIGNING_REGION = "us-east-1"  # AWS's IAM is global and signed for us-east-1
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class Endpoint:
    """The AWS-compatible service over one database."""

    def __init__(
        self,
        data_dir: Path,
        master_key: bytes,
        *,
        min_duration: int = 900,
        account: str | None = None,
        region: str | None = None,
        clock: Clock = _now,
    ) -> None:
        """Open (or create) the endpoint in `data_dir`; `account` and `region` are stored on
        first use and read back afterwards."""
        self.db = Database(data_dir / "xtok.db")
        self.sealer = Sealer(self._data_key(master_key))
        self.audit = AuditLog(self.db, audit_key(master_key))
        with self.db.write() as conn:
            for key, value in (("account", account), ("region", region)):
                if value is not None:
                    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        self.settings = Settings(
            self.db.meta("account") or DEFAULT_ACCOUNT,
            self.db.meta("region") or DEFAULT_REGION,
            min_duration,
        )
        self.clock = clock
        self.holders = KeyHolders(self.db, self.sealer, self.settings.account)
        self._reopen = partial(
            Endpoint, data_dir, master_key, min_duration=min_duration, clock=clock
        )

    def reopen(self) -> Endpoint:
        """Another Endpoint over the same data, with connections of its own (for a worker
        process: SQLite connections must not cross a fork)."""
        return self._reopen()

    def _data_key(self, master_key: bytes) -> bytes:
        """The database's data key, wrapped by the master key (created on first start)."""
        master = Sealer(master_key)
        wrapped = self.db.meta("data_key")
        if wrapped is None:
            key = new_key()
            with self.db.write() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('data_key', ?)",
                    (master.seal(key, "data-key").hex(),),
                )
                audit.begin(conn, audit_key(master_key))
            wrapped = self.db.meta("data_key") or ""
        return master.open(bytes.fromhex(wrapped), "data-key")

    def _regions(self, service: str) -> tuple[str, ...]:
        """The regions a credential scope may name for `service` on this endpoint."""
        if service == "iam":
            return (self.settings.region, IAM_SIGNING_REGION)
        return (self.settings.region,)

    def handle(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        source_ip: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, as (status, headers, body). `headers` keys are lower case; `body` is None
        when it was larger than MAX_BODY; `source_ip` is the client's address."""
        request_id = str(uuid.uuid4())
        now = self.clock()
        target = headers.get("x-amz-target")
        protocol = "query" if target is None else "json"
        # Until the request says otherwise, errors are rendered as the protocol's first service.
        service = "sts" if target is None else "secretsmanager"
        action = UNKNOWN_ACTION
        caller: Caller | None = None
        ctx: Ctx | None = None
        try:
            if body is None:
                raise Fault("RequestEntityTooLarge", "Request body exceeds 1 MiB", 413)
            if target is None:
                form = _form(url, body)
                name = form.get("Action", "")
            else:
                form = {}
                prefix, _, name = target.partition(".")
                if prefix != "secretsmanager":
                    raise Fault("UnknownOperationException", _not_served(prefix), 400)
            action = _known(service, name)
            auth = sigv4.parse(headers)
            if target is None and auth.service in QUERY_SERVICES:
                # One endpoint serves both query services: the credential scope tells which.
                service = auth.service
                action = _known(service, name)
            elif target is None and auth.service != service:
                raise Fault.bad_signature(
                    f"Credential should be scoped to correct service: '{service}' "
                    f"({_not_served(auth.service)})"
                )
            sigv4.require_scope(auth, service, self._regions(service), headers)
            caller = identify(
                self.holders.get(auth.access_key), auth, method, url, headers, body, now
            )
            handler = HANDLERS[service].get(action)
            if handler is None:
                raise wire.not_served(service, name, HANDLERS[service])
            op_model = wire.operation(service, action)
            params = (
                wire.parse_json(op_model, body)
                if protocol == "json"
                else wire.parse_query(op_model, form)
            )
            keys = request_keys(url, auth.region, source_ip, now)
            ctx = Ctx(self.db, self.sealer, self.settings, caller, now, keys)
            # A change and its audit row commit together (a Fault keeps what was written before
            # it, e.g. a used MFA code). Reads stay outside the write lock.
            scope = self.db.write(keep_on=(Fault,)) if _changes(action) else nullcontext()
            with scope as conn:
                if conn is not None and service != "secretsmanager":
                    KeyHolders.invalidate(conn)  # users, keys, roles or sessions may change
                result = handler(ctx, params)
                payload = (
                    wire.render_json(op_model, result)
                    if protocol == "json"
                    else wire.render_query(service, op_model, result, request_id)
                )
                self._record(now, caller, service, action, ctx.resource, "allow", None)
            ctype = "application/x-amz-json-1.1" if protocol == "json" else "text/xml"
            return 200, {"content-type": ctype, "x-amzn-requestid": request_id}, payload
        except Fault as fault:
            failure = fault
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
            # A parameter of the wrong shape reached a handler (JSON carries any type).
            failure = Fault(
                "ValidationError",
                f"Invalid request parameter ({type(exc).__name__})",
                400,
                "InvalidParameterException",
            )
        except Error:
            # e.g. stored data that does not decrypt: report it without details.
            failure = Fault("InternalFailure", "The server could not read its stored data.", 500)
        except Exception as exc:  # never a traceback or a bare 500 to a client
            failure = Fault("InternalFailure", f"Internal error ({type(exc).__name__})", 500)
            # For the operator: where it failed, without the message (it may quote input).
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            print(
                f"xtok server: internal error in {service}:{action} request {request_id}: "
                f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}",
                file=sys.stderr,
            )
        return self._fail(failure, protocol, service, action, caller, ctx, now, request_id)

    def _fail(
        self,
        fault: Fault,
        protocol: str,
        service: str,
        action: str,
        caller: Caller | None,
        ctx: Ctx | None,
        now: datetime,
        request_id: str,
    ) -> tuple[int, dict[str, str], bytes]:
        code = fault.code_for(protocol)
        decision = "deny" if code.startswith("AccessDenied") else "error"
        resource = ctx.resource if ctx else None
        try:
            self._record(now, caller or fault.principal, service, action, resource, decision, code)
        except Exception as exc:  # the answer is an error anyway; say why on the server side
            print(f"xtok server: cannot write the audit log: {type(exc).__name__}", file=sys.stderr)
            fault = Fault("InternalFailure", "The server could not record the request.", 500)
        return wire.render_error(protocol, service, fault, request_id)

    def _record(
        self,
        now: datetime,
        caller: Caller | None,
        service: str,
        action: str,
        resource: str | None,
        decision: str,
        error: str | None,
    ) -> None:
        self.audit.append(
            Record(
                time=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                principal=caller.arn if caller else None,
                session_name=caller.session_name if caller else None,
                source_identity=caller.source_identity if caller else None,
                action=f"{service}:{action}"[:128],
                resource=resource,
                decision=decision,
                error=error,
            )
        )


def _not_served(service: str) -> str:
    return (
        f"service {wire.shown_name(service)} is not served by xtok server; it serves "
        + ", ".join(sorted(HANDLERS))
    )


def _known(service: str, name: str) -> str:
    """`name` if it is an operation of `service`, else UNKNOWN_ACTION (for the audit log)."""
    return name if name in wire.operation_names(service) else UNKNOWN_ACTION


def _changes(action: str) -> bool:
    """Whether an operation writes state (STS sessions included)."""
    return action == "GetSessionToken" or not action.startswith(("Get", "List", "Describe"))


def _form(url: str, body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Fault("MalformedQueryString", "The request body is not UTF-8", 400) from None
    query = url.partition("?")[2]
    pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(text, keep_blank_values=True)
    return dict(pairs)


async def _read_body(receive: Any, headers: dict[str, str]) -> bytes | None:
    """The request body, or None when it is over MAX_BODY (then it is not read to the end).
    Raises ConnectionResetError when the client went away (or was timed out) meanwhile."""
    declared = headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _url(scope: dict[str, Any], headers: dict[str, str]) -> str:
    """The request URL as the client addressed it (the host header is part of the signature)."""
    host = headers.get("host")
    if host is None:
        address, port = scope["server"] or ("localhost", None)
        host = f"{address}:{port}" if port else address
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{scope['path']}" + (f"?{query}" if query else "")


def _client_ip(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def asgi_app(endpoint: Endpoint) -> Any:
    """A bare ASGI application around `endpoint`. Each request is handled inline on the event
    loop: the handler is short and CPU-bound, and a hop to a worker thread costs more than it
    (the GIL is contended between the loop and the workers)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await _read_body(receive, headers)
        except ConnectionResetError:
            return  # nobody left to answer
        status, out_headers, payload = endpoint.handle(
            scope["method"], _url(scope, headers), headers, body, _client_ip(scope)
        )
        response_headers = [(k.encode(), v.encode()) for k, v in out_headers.items()]
        response_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    return app
