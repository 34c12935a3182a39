"""AWS Signature Version 4 for the fetch's requests, without importing botocore.

Importing botocore costs more than a whole GetSecretValue round trip, and the fetch runs at the
start of every pipeline step. botocore stays the reference: tests/test_sign.py checks that these
signatures equal `botocore.auth.SigV4Auth`'s over randomized requests, and the local endpoint
verifies every request with botocore. Scope: header-signed requests without a query string,
whose headers the caller lists in full (nothing botocore leaves unsigned, such as User-Agent).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    session_token: str | None,
    region: str,
    service: str,
    when: datetime,
) -> dict[str, str]:
    """`headers` plus Host, X-Amz-Date, X-Amz-Security-Token and Authorization, as sent."""
    parts = urlsplit(url)
    if parts.query:
        raise ValueError("signing a query string is not supported")
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    out = dict(headers)
    out.setdefault("Host", host_header(url))
    out["X-Amz-Date"] = stamp
    if session_token:
        out["X-Amz-Security-Token"] = session_token
    canonical = {name.lower(): " ".join(value.split()) for name, value in out.items()}
    if len(canonical) != len(out):
        raise ValueError("header names must differ in more than case")
    names = sorted(canonical)
    signed = ";".join(names)
    request = "\n".join(
        [
            method.upper(),
            quote(_remove_dot_segments(parts.path), safe="/~"),
            "",
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    key = f"AWS4{secret_key}".encode()
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, "
        f"Signature={signature}"
    )
    return out


def host_header(url: str) -> str:
    """The Host value botocore signs: lower case, without userinfo or a default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal, also dropping empty segments (as AWS requires)."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and kept else ""
    return first + "/".join(kept) + last
