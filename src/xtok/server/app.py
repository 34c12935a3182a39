"""The HTTP side: one endpoint that speaks STS, IAM (query protocol) and Secrets Manager (JSON),
authenticates every request, dispatches it, and records it in the audit log."""

from __future__ import annotations

import sys
import traceback
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from xtok.errors import Error
from xtok.server import iam, iam_groups, iam_policies, secretsmanager, sts, wire
from xtok.server.audit import AuditLog, Record, audit_key
from xtok.server.auth import Caller, identify, request_keys
from xtok.server.crypto import Sealer, new_key
from xtok.server.db import Database
from xtok.server.faults import Fault
from xtok.server.ops import Ctx, Handler, Settings

MAX_BODY = 1 << 20
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
HANDLERS: dict[str, dict[str, Handler]] = {
    "sts": sts.OPERATIONS,
    "iam": iam.OPERATIONS | iam_groups.OPERATIONS | iam_policies.OPERATIONS,
    "secretsmanager": secretsmanager.OPERATIONS,
}
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
            wrapped = self.db.meta("data_key") or ""
        return master.open(bytes.fromhex(wrapped), "data-key")

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
        target = headers.get("x-amz-target", "")
        protocol = "json" if target else "query"
        service, action = "sts", "?"
        caller: Caller | None = None
        ctx: Ctx | None = None
        try:
            if body is None:
                raise Fault("RequestEntityTooLarge", "Request body exceeds 1 MiB", 413)
            if protocol == "json":
                prefix, _, action = target.partition(".")
                service = "secretsmanager" if prefix == "secretsmanager" else prefix
                if service not in HANDLERS:
                    raise Fault("UnknownOperationException", _not_served(prefix), 400)
                form: dict[str, str] = {}
            else:
                form = _form(url, body)
                action = form.get("Action", "?")
                service = _scope_service(headers) or "sts"
                if service not in ("sts", "iam"):
                    raise Fault("InvalidAction", _not_served(service), 400)
            caller, auth = identify(
                self.db, self.sealer, self.settings.account, method, url, headers, body, now
            )
            op_model = wire.operation(service, action, HANDLERS[service])
            handler = HANDLERS[service][action]
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
            with scope:
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
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
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


def _scope_service(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    try:
        return auth.split("Credential=", 1)[1].split("/")[3]
    except IndexError:
        return None


async def _read_body(request: Any, headers: dict[str, str]) -> bytes | None:
    """The request body, or None when it is over MAX_BODY (then it is not read to the end)."""
    declared = headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def asgi_app(endpoint: Endpoint) -> Any:
    """The Starlette application around `endpoint`."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def serve(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await _read_body(request, headers)
        url = str(request.url)
        status, out_headers, payload = await run_in_threadpool(
            endpoint.handle,
            request.method,
            url,
            headers,
            body,
            request.client.host if request.client else None,
        )
        return Response(payload, status_code=status, headers=out_headers)

    return Starlette(routes=[Route("/{path:path}", serve, methods=["GET", "POST"])])
