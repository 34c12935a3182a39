"""AWS wire formats, driven by botocore's own service models: the query protocol (form in,
XML out: STS, IAM) and JSON 1.1 (Secrets Manager). Using the models that clients are generated
from keeps every answer in the shape botocore parses."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from datetime import UTC, datetime
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import OperationModel, ServiceModel, Shape

from xtok.server.faults import Fault

Params = dict[str, Any]


SERVICES = ("sts", "iam", "secretsmanager")


@cache
def model(service: str) -> ServiceModel:
    """One of the three served models; never another (each costs ~1 MB, and a caller picks
    the name)."""
    if service not in SERVICES:
        raise ValueError(f"not a served service: {service!r}")
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@cache
def operation_names(service: str) -> frozenset[str]:
    return frozenset(model(service).operation_names)


def operation(service: str, name: str) -> OperationModel:
    """The model of `name`, a served operation of `service` (so its model has it)."""
    return model(service).operation_model(name)


def not_served(service: str, name: str, served: Collection[str]) -> Fault:
    """An operation this endpoint does not implement, said so (it is no client version
    problem), with the operations it does; in the error shape botocore parses."""
    message = (
        f"{shown_name(name)} is not served by xtok server; its {service} operations are "
        + ", ".join(sorted(served))
    )
    code = "UnknownOperationException" if service == "secretsmanager" else "InvalidAction"
    return Fault(code, message, 400)


def shown_name(name: str) -> str:
    """A caller-given operation or service name, quoted and escaped unless plainly a name."""
    plain = len(name) <= 64 and name.isascii() and name.isidentifier()
    return name if plain else repr(name[:64])


# --- query protocol: form parameters in ------------------------------------------------------


def parse_query(op: OperationModel, form: dict[str, str]) -> Params:
    shape = op.input_shape
    return _q_struct(shape, form, "") if shape is not None else {}


def _q_name(name: str, shape: Shape) -> str:
    return str(shape.serialization.get("name", name))


def _q_struct(shape: Shape, form: dict[str, str], prefix: str) -> Params:
    out: Params = {}
    for name, member in shape.members.items():  # type: ignore[attr-defined]
        key = prefix + _q_name(name, member)
        value = _q_value(member, form, key)
        if value is not None:
            out[name] = value
    return out


def _q_value(shape: Shape, form: dict[str, str], key: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not any(k.startswith(key + ".") for k in form):
            return None
        return _q_struct(shape, form, key + ".")
    if kind == "list":
        member = shape.member  # type: ignore[attr-defined]
        base = key if shape.serialization.get("flattened") else key + ".member"
        items = []
        i = 1
        while True:
            item = _q_value(member, form, f"{base}.{i}")
            if item is None:
                break
            items.append(item)
            i += 1
        if not items and form.get(key) == "":
            return []
        return items or None
    if kind == "map":
        value_shape = shape.value  # type: ignore[attr-defined]
        entries = {}
        i = 1
        while f"{key}.entry.{i}.key" in form:
            entry = f"{key}.entry.{i}"
            entries[form[f"{entry}.key"]] = _q_value(value_shape, form, f"{entry}.value")
            i += 1
        return entries or None
    if key not in form:
        return None
    return _scalar(shape, form[key], key)


def _scalar(shape: Shape, raw: str, key: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return raw.lower() == "true"
        if kind == "blob":
            return base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        raise Fault.invalid(f"Invalid value for parameter {key}") from None
    return raw


# --- JSON protocol: body in ------------------------------------------------------------------


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json would read NaN and Infinity


def parse_json(op: OperationModel, body: bytes) -> Params:
    try:
        data = json.loads(body or b"{}", parse_constant=_not_json)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's stack
        raise Fault("SerializationException", "Malformed JSON request body", 400) from None
    if not isinstance(data, dict):
        raise Fault("SerializationException", "The request body must be a JSON object", 400)
    shape = op.input_shape
    for name, member in shape.members.items() if shape is not None else []:
        if member.type_name == "blob" and isinstance(data.get(name), str):
            try:
                data[name] = base64.b64decode(data[name], validate=True)
            except binascii.Error:
                raise Fault("SerializationException", f"{name} is not base64", 400) from None
    return data


# --- responses ---------------------------------------------------------------------------------


def render_query(service: str, op: OperationModel, result: Params, request_id: str) -> bytes:
    ns = model(service).metadata["xmlNamespace"]
    inner = ""
    shape = op.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{op.name}Result")
        inner = f"<{wrapper}>{_x_struct(shape, result)}</{wrapper}>"
    return (
        f'<{op.name}Response xmlns="{ns}">{inner}<ResponseMetadata><RequestId>{request_id}'
        f"</RequestId></ResponseMetadata></{op.name}Response>"
    ).encode()


def _x_struct(shape: Shape, value: Params) -> str:
    parts = []
    for name, member in shape.members.items():  # type: ignore[attr-defined]
        if value.get(name) is not None:
            tag = _q_name(name, member)
            parts.append(_x_value(member, value[name], tag))
    return "".join(parts)


def _x_value(shape: Shape, value: Any, tag: str) -> str:
    kind = shape.type_name
    if kind == "structure":
        return f"<{tag}>{_x_struct(shape, value)}</{tag}>"
    if kind == "list":
        member = shape.member  # type: ignore[attr-defined]
        if shape.serialization.get("flattened"):
            return "".join(_x_value(member, v, tag) for v in value)
        name = _q_name("member", member)
        return f"<{tag}>{''.join(_x_value(member, v, name) for v in value)}</{tag}>"
    if kind == "map":
        entries = "".join(
            f"<entry>{_x_value(shape.key, k, 'key')}{_x_value(shape.value, v, 'value')}</entry>"  # type: ignore[attr-defined]
            for k, v in value.items()
        )
        return f"<{tag}>{entries}</{tag}>"
    return f"<{tag}>{escape(_text(kind, value))}</{tag}>"


def _text(kind: str, value: Any) -> str:
    if kind == "timestamp":
        return iso(value)
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "blob":
        return base64.b64encode(value).decode()
    return str(value)


def render_json(op: OperationModel, result: Params) -> bytes:
    shape = op.output_shape
    return json.dumps(_j_value(shape, result) if shape is not None else {}).encode()


def _j_value(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return {
            name: _j_value(member, value[name])
            for name, member in shape.members.items()  # type: ignore[attr-defined]
            if value.get(name) is not None
        }
    if kind == "list":
        return [_j_value(shape.member, v) for v in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {k: _j_value(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "timestamp":
        return value.timestamp() if isinstance(value, datetime) else float(value)
    if kind == "blob":
        return base64.b64encode(value).decode()
    return value


# The errors common to every query-protocol service, with the statuses AWS documents for them
# (IAM and STS API references, "Common Errors"). A service's own errors come from its model.
_QUERY_COMMON = {
    "AccessDenied": 403,
    "ExpiredToken": 403,
    "IncompleteSignature": 400,
    "InternalFailure": 500,
    "InvalidAction": 400,
    "InvalidClientTokenId": 403,
    "InvalidParameterValue": 400,
    "MalformedQueryString": 404,
    "MissingAuthenticationToken": 403,
    "RequestExpired": 400,
    "SignatureDoesNotMatch": 403,
    "ValidationError": 400,
}


@cache
def _modeled_statuses(service: str) -> dict[str, int]:
    statuses = {}
    for shape in model(service).error_shapes:
        error = shape.metadata.get("error") or {}
        statuses[error.get("code", shape.name)] = int(error.get("httpStatusCode", 400))
    return statuses


def status(protocol: str, service: str, code: str, fallback: int) -> int:
    """The HTTP status AWS answers `code` with. JSON 1.1 services (Secrets Manager) answer every
    client error with 400, AccessDeniedException and the signature errors included; query
    services (STS, IAM) use their model's status, else the documented common one."""
    if fallback >= 500 or fallback == 413:  # server-side failures, and bodies never read
        return fallback
    if protocol == "json":
        return 400
    if service in ("sts", "iam") and code in _modeled_statuses(service):
        return _modeled_statuses(service)[code]
    return _QUERY_COMMON.get(code, fallback)


def render_error(
    protocol: str, service: str, fault: Fault, request_id: str
) -> tuple[int, dict[str, str], bytes]:
    code = fault.code_for(protocol)
    http_status = status(protocol, service, code, fault.status)
    if protocol == "json":
        body = json.dumps({"__type": code, "message": fault.message}).encode()
        return (
            http_status,
            {
                "content-type": "application/x-amz-json-1.1",
                "x-amzn-errortype": code,
                "x-amzn-requestid": request_id,
            },
            body,
        )
    ns = model(service).metadata.get("xmlNamespace", "") if service else ""
    kind = "Receiver" if http_status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{ns}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(fault.message)}</Message></Error><RequestId>{request_id}</RequestId>"
        "</ErrorResponse>"
    ).encode()
    return http_status, {"content-type": "text/xml", "x-amzn-requestid": request_id}, body


def iso(value: datetime | float) -> str:
    dt = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
