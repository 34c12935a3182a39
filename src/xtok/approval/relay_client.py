"""Talking to a relay (docs/relay-api.md): the run posts and waits, the approver logs in with a
signed GetCallerIdentity and answers. Nothing the relay says is trusted beyond delivery: the
approver's xtok verifies proofs itself, and the run opens only tokens sealed to its own key."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from xtok.aws.session import AwsConfig, aws_errors, client, session
from xtok.errors import (
    AccessDenied,
    ConfigError,
    CredentialsRejected,
    Error,
    NetworkError,
    NotFound,
    UsageError,
)
from xtok.loopback import is_loopback

URL_ENV = "XTOK_RELAY_URL"
KEY_ENV = "XTOK_RELAY_KEY"
_TIP_URL = f"pass --relay URL or set {URL_ENV}"
# AWS's STS endpoints and the region their signatures name (the global one: us-east-1).
_STS_REGION = re.compile(r"https://sts(?:\.([a-z0-9-]+))?\.amazonaws\.com(?:\.cn)?/$")


class RelayError(AccessDenied):
    """The relay refused a call (the message is the relay's own, escaped)."""


_BY_STATUS: dict[int, type[Error]] = {
    401: CredentialsRejected,
    403: AccessDenied,
    404: NotFound,
    502: NetworkError,
}


def check_url(url: str | None) -> str:
    """HTTPS, or plain HTTP on loopback only: approver sessions and wait secrets are bearer
    values."""
    if not url:
        raise UsageError("no relay given", tip=_TIP_URL)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise UsageError(f"relay URL {url!a} is not https://", tip=_TIP_URL)
    return url.rstrip("/")


class Relay:
    def __init__(self, url: str, timeout: float = 30) -> None:
        self.url = check_url(url)
        self.timeout = timeout
        self.bearer: str | None = None

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        bearer: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        token = bearer or self.bearer
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(  # noqa: S310 - checked scheme
            self.url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:  # noqa: S310
                text = resp.read(1 << 20)
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        except OSError as exc:
            raise NetworkError(
                f"cannot reach the relay {self.url}: {type(exc).__name__}",
                tip="check the relay URL and the network",
            ) from None
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise NetworkError(f"the relay {self.url} gave an unreadable answer") from None

    def _error(self, exc: urllib.error.HTTPError) -> Error:
        try:
            detail = json.loads(exc.read(1 << 16))["error"]
            message = ascii(str(detail["message"])[:200])[1:-1]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}"
        cls = _BY_STATUS.get(exc.code, RelayError)
        tip = None
        if exc.code == 429:
            tip = f"retry in {exc.headers.get('Retry-After', 'a few')} s"
        return cls(f"relay: {message}", tip=tip)

    # -- run side

    def post(self, code: str, proof: str | None, key: str | None) -> dict[str, Any]:
        answer = self.call("POST", "/v1/requests", {"request": code, "proof": proof}, bearer=key)
        if not isinstance(answer, dict) or not isinstance(answer.get("wait_secret"), str):
            raise NetworkError("the relay's answer to the post is malformed")
        return answer

    def wait(self, rid: str, wait_secret: str, seconds: int) -> dict[str, Any]:
        answer = self.call(
            "GET",
            f"{_request_path(rid)}/answer?wait={seconds}",
            bearer=wait_secret,
            timeout=seconds + 30,
        )
        if not isinstance(answer, dict):
            raise NetworkError("the relay's answer is malformed")
        return answer

    def refresh_proof(self, rid: str, wait_secret: str, proof: str) -> None:
        self.call("PUT", f"{_request_path(rid)}/proof", {"proof": proof}, bearer=wait_secret)

    def cancel(self, rid: str, wait_secret: str) -> None:
        self.call("DELETE", _request_path(rid), bearer=wait_secret)

    # -- approver side

    def login(self, aws: AwsConfig) -> str:
        info = self.call("GET", "/v1/info")
        sts_url = info.get("sts_url") if isinstance(info, dict) else None
        proof = caller_proof(aws, self.url, sts_url if isinstance(sts_url, str) else None)
        answer = self.call("POST", "/v1/session", proof)
        if not isinstance(answer, dict) or not isinstance(answer.get("session"), str):
            raise NetworkError("the relay's answer to the login is malformed")
        self.bearer = answer["session"]
        return str(answer.get("arn", ""))

    def pending(self) -> list[dict[str, Any]]:
        answer = self.call("GET", "/v1/requests?state=pending")
        items = answer.get("requests") if isinstance(answer, dict) else None
        return [i for i in items or [] if isinstance(i, dict)]

    def get(self, rid: str) -> dict[str, Any]:
        answer = self.call("GET", _request_path(rid))
        if not isinstance(answer, dict):
            raise NetworkError("the relay's answer is malformed")
        return answer

    def approve(self, rid: str, sealed: str) -> None:
        self.call("POST", f"{_request_path(rid)}/answer", {"approve": {"sealed": sealed}})

    def deny(self, rid: str, reason: str) -> None:
        self.call("POST", f"{_request_path(rid)}/answer", {"deny": {"reason": reason}})


def _request_path(rid: str) -> str:
    return "/v1/requests/" + urllib.parse.quote(rid, safe="")


def caller_proof(aws: AwsConfig, relay_url: str, sts_url: str | None = None) -> dict[str, Any]:
    """A GetCallerIdentity request signed with the approver's own credentials, not sent: the
    relay forwards it to STS to learn who is calling. It names the relay in a signed header.

    `sts_url` is the STS endpoint the relay forwards to (its /v1/info says which: whatever a
    relay says here, the proof only ever tells who you are); default: your own endpoint."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    from xtok.relay.callers import BODY, RELAY_HEADER

    sess = session(aws)
    sts = client(sess, "sts", aws)
    with aws_errors("cannot read your AWS credentials"):
        creds = sess.get_credentials()
    if creds is None:
        raise ConfigError("no AWS credentials to prove who you are to the relay")
    url = (sts_url or sts.meta.endpoint_url).rstrip("/") + "/"
    regional = _STS_REGION.match(url)
    region = (regional.group(1) or "us-east-1") if regional else sts.meta.region_name
    request = AWSRequest(
        method="POST",
        url=url,
        data=BODY,
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            RELAY_HEADER: relay_url,
        },
    )
    SigV4Auth(creds.get_frozen_credentials(), "sts", region).add_auth(request)
    headers: Mapping[str, str] = dict(request.headers.items())
    return {
        "method": "POST",
        "url": url,
        "headers": dict(headers),
        "body": base64.b64encode(BODY).decode(),
    }
