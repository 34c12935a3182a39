"""Who an approver is: a signed `sts:GetCallerIdentity` request, forwarded to STS.

As Vault's AWS auth method and aws-iam-authenticator do: the approver's xtok signs the request
with their own AWS credentials and hands it over unsent; the relay sends it to *its configured*
STS endpoint (never to a URL the client names) and reads the caller's ARN from STS's answer.
The signed `X-Xtok-Relay` header names the relay, so a proof made for one relay cannot be
replayed to another; STS's 15-minute date window bounds its life.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

from xtok.errors import AccessDenied, CredentialsRejected, NetworkError, UsageError

BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
RELAY_HEADER = "x-xtok-relay"
AWS_STS_URL = "https://sts.amazonaws.com/"
_SIGNED = re.compile(r"SignedHeaders=([a-z0-9;_-]+)")
_FORWARDED = ("authorization", "x-amz-date", "x-amz-security-token", "content-type")
_TIMEOUT = 10
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}:[\x20-\x7e]{0,2048}")  # no CR/LF: nothing to inject


def normalize(url: str) -> str:
    return url.rstrip("/") + "/"


def check_proof(proof: Any, sts_url: str, relay_url: str) -> tuple[str, dict[str, str], bytes]:
    """The request to forward (url, headers, body), or UsageError/CredentialsRejected why not."""
    if not isinstance(proof, dict):
        raise UsageError("the proof is not an object")
    method, url, headers = proof.get("method"), proof.get("url"), proof.get("headers")
    if method != "POST" or not isinstance(url, str) or not isinstance(headers, dict):
        raise UsageError("the proof needs method POST, url and headers")
    if normalize(url) != normalize(sts_url):
        raise CredentialsRejected("the proof is signed for another STS endpoint than the relay's")
    try:
        body = base64.b64decode(str(proof.get("body", "")), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError("the proof's body is not base64") from None
    if body != BODY:
        raise CredentialsRejected("the proof is not a GetCallerIdentity request")
    if len(headers) > 30 or not all(_HEADER.fullmatch(f"{k}:{v}") for k, v in headers.items()):
        raise UsageError("the proof's headers are malformed")
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    signed = _SIGNED.search(lower.get("authorization", ""))
    if not signed or RELAY_HEADER not in signed.group(1).split(";"):
        raise CredentialsRejected("the proof does not sign the X-Xtok-Relay header")
    if normalize(lower.get(RELAY_HEADER, "")) != normalize(relay_url):
        raise CredentialsRejected("the proof was made for another relay")
    forwarded = {k: v for k, v in lower.items() if k in _FORWARDED or k == RELAY_HEADER}
    for name in signed.group(1).split(";"):
        if name not in forwarded and name not in ("host", "content-length"):
            if name not in lower:
                raise CredentialsRejected(f"the proof signs a header it does not carry: {name}")
            forwarded[name] = lower[name]
    return normalize(sts_url), forwarded, body


def caller_arn(url: str, headers: Mapping[str, str], body: bytes) -> str:
    """Send the signed request to STS; the caller's ARN, or why not."""
    req = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - the relay's own STS URL
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:  # noqa: S310
            text = resp.read(1 << 16)
    except urllib.error.HTTPError as exc:
        raise CredentialsRejected(f"STS refused the proof (HTTP {exc.code})") from None
    except OSError as exc:
        raise NetworkError(f"cannot reach STS: {type(exc).__name__}") from None
    try:
        root = ElementTree.fromstring(text)  # noqa: S314 - STS's answer, size-capped
    except ElementTree.ParseError:
        raise NetworkError("STS gave an unreadable answer") from None
    arn = next((el.text for el in root.iter() if el.tag.endswith("}Arn") or el.tag == "Arn"), None)
    if not arn or not arn.startswith("arn:"):
        raise NetworkError("STS's answer names no caller")
    return arn


def check_allowed(arn: str, patterns: Sequence[str]) -> None:
    if not any(fnmatch.fnmatchcase(arn, p) for p in patterns):
        raise AccessDenied(f"{arn} is not an approver on this relay")
