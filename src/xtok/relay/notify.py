"""Webhook notifications of new requests: Slack-compatible incoming-webhook JSON, and a generic
JSON webhook signed with HMAC-SHA256 (`X-Xtok-Signature`).

Sent from background threads with retries and exponential backoff: a slow, failing or dead
webhook never delays or fails a request. A message says what an approver needs to decide to
look (job, the identity the relay verified, secrets, lifetime, the approve and inbox lines),
never a token, a wait secret or the run's JWT. Webhook URLs are secrets themselves (Slack's
carry their key): they live in a private file, and logs name only their kind and host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xtok import display
from xtok.approval.request import RequestCode
from xtok.approval.review import secret_labels
from xtok.duration import format_duration
from xtok.errors import ConfigError
from xtok.loopback import is_loopback
from xtok.regular_file import read_private

SIGNATURE_HEADER = "X-Xtok-Signature"
TIMESTAMP_HEADER = "X-Xtok-Timestamp"
DELIVERY_HEADER = "X-Xtok-Delivery"
_TIP = "see `xtok relay --help` (--webhooks) and the README's Notifications section"


@dataclass(frozen=True)
class Webhook:
    kind: str  # "slack" or "json"
    url: str = field(repr=False)
    secret: bytes | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.kind} webhook on {urllib.parse.urlsplit(self.url).hostname}"


@dataclass(frozen=True)
class NotifyConfig:
    webhooks: tuple[Webhook, ...] = ()
    attempts: int = 5
    backoff: float = 2.0  # seconds before the first retry; doubled for each next one
    timeout: float = 10.0


def load(path: Path) -> NotifyConfig:
    """Read the webhooks file (TOML, private to its owner: it holds the URLs and keys).

    [notify]                    # optional
    attempts = 5
    backoff = 2.0
    [[webhook]]
    kind = "slack"
    url = "https://hooks.slack.com/services/…"
    [[webhook]]
    kind = "json"
    url = "https://ops.example.com/xtok"
    secret = "…"                # HMAC-SHA256 key, at least 16 characters
    """
    try:
        data = tomllib.loads(read_private(path, what="webhooks file").decode())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the webhooks file {path}: {type(exc).__name__}") from None
    hooks = []
    for n, item in enumerate(data.get("webhook", ()), 1):
        hooks.append(_webhook(item, f"{path}: webhook {n}"))
    section = data.get("notify", {})
    try:
        config = NotifyConfig(
            tuple(hooks),
            attempts=int(section.get("attempts", 5)),
            backoff=float(section.get("backoff", 2.0)),
            timeout=float(section.get("timeout", 10.0)),
        )
    except (TypeError, ValueError, AttributeError):
        raise ConfigError(f"{path}: [notify] is malformed", tip=_TIP) from None
    if not 1 <= config.attempts <= 20 or not 0 <= config.backoff <= 600 or config.timeout <= 0:
        raise ConfigError(f"{path}: [notify] values are out of range", tip=_TIP)
    return config


def _webhook(item: Any, where: str) -> Webhook:
    if not isinstance(item, dict) or item.get("kind") not in ("slack", "json"):
        raise ConfigError(f"{where}: kind must be slack or json", tip=_TIP)
    url = item.get("url")
    parts = urllib.parse.urlsplit(url if isinstance(url, str) else "")
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))):
        raise ConfigError(f"{where}: url must be https:// (plain http on loopback only)", tip=_TIP)
    secret = item.get("secret")
    if item["kind"] == "json" and not (isinstance(secret, str) and len(secret) >= 16):
        raise ConfigError(f"{where}: a json webhook needs a secret of 16+ characters", tip=_TIP)
    return Webhook(item["kind"], str(url), secret.encode() if isinstance(secret, str) else None)


def facts(
    request: RequestCode, poster: dict[str, Any], relay_url: str, expires: int
) -> dict[str, Any]:
    """What a notification says: every value from the run escaped (no control or bidi
    characters); the identity is the one the relay verified, or says it is unproven."""
    who = request.identity
    if poster.get("poster_kind") == "oidc":
        identity = {
            "verified": True,
            "issuer": display.shown(poster.get("poster_issuer")),
            "subject": display.shown(poster.get("poster_subject")),
        }
    else:
        identity = {"verified": False, "poster": display.shown(poster.get("poster"))}
    return {
        "event": "request.pending",
        "id": request.id,
        "relay": relay_url,
        "run": {k: display.shown(v) for k, v in who.to_json().items()},
        "identity": identity,
        "secrets": [display.shown(s) for s in secret_labels(request)],
        "lifetime": request.duration,
        "role": display.shown(request.role or ""),
        "key_fingerprint": request.fingerprint,
        "expires": expires,
        "approve": f"xtok approve --relay {relay_url} --pick {request.id}",
        "inbox": f"xtok inbox --relay {relay_url}",
    }


def _slack_escape(text: str) -> str:
    # Slack's own escaping: no <!channel>, <@user> or <url|label> from a run.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(f: dict[str, Any]) -> str:
    run = f["run"]
    job = " #".join(p for p in (run.get("job"), run.get("build")) if p) or run.get("ci", "?")
    if f["identity"]["verified"]:
        who = f"verified by {f['identity']['issuer']} as {f['identity']['subject']}"
    else:
        who = "UNPROVEN (the job, build and commit are only claimed)"
    lines = [
        f"xtok: a run waits for an approval: {job} (request {f['id']})",
        f"CI: {run.get('ci', '?')}, commit {run.get('commit', '-')}",
        f"identity: {who}",
        f"secrets: {', '.join(f['secrets'])}",
        f"lifetime: {format_duration(f['lifetime'])}, role: {f['role'] or '-'}",
        f"approve: {f['approve']}   or in a browser: {f['inbox']}",
    ]
    return _slack_escape("\n".join(lines))


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=HEX` of HMAC-SHA256 over `TIMESTAMP.BODY` (the timestamp header's value)."""
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


class Notifier:
    """Delivers each new request's message to every webhook, off the request's path."""

    WORKERS = 4

    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self._queue: queue.SimpleQueue[tuple[Webhook, bytes, str]] = queue.SimpleQueue()
        for n in range(self.WORKERS if config.webhooks else 0):
            # Daemon threads: a webhook still being retried never holds up the relay's exit.
            threading.Thread(target=self._work, name=f"xtok-notify-{n}", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._deliver(*self._queue.get())

    def new_request(self, f: dict[str, Any]) -> None:
        for hook in self.config.webhooks:
            if hook.kind == "slack":
                body = json.dumps({"text": slack_text(f)}).encode()
            else:
                body = json.dumps(f).encode()
            self._queue.put((hook, body, str(uuid.uuid4())))

    def _deliver(self, hook: Webhook, body: bytes, delivery: str) -> None:
        for attempt in range(1, self.config.attempts + 1):
            headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery}
            if hook.secret is not None:
                stamp = str(int(time.time()))
                headers[TIMESTAMP_HEADER] = stamp
                headers[SIGNATURE_HEADER] = signature(hook.secret, stamp, body)
            req = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")  # noqa: S310 - checked scheme
            try:
                with urllib.request.urlopen(req, timeout=self.config.timeout):  # noqa: S310
                    return
            except urllib.error.HTTPError as exc:
                why = f"HTTP {exc.code}"
            except OSError as exc:
                why = type(exc).__name__
            if attempt == self.config.attempts:
                _log(f"{hook.name}: {why}; gave up after {attempt} attempts")
                return
            delay = self.config.backoff * 2 ** (attempt - 1)
            _log(f"{hook.name}: {why}; retry {attempt}/{self.config.attempts - 1} in {delay:g} s")
            time.sleep(delay)


def _log(text: str) -> None:
    print(f"xtok: relay: notification: {text}", file=sys.stderr, flush=True)
