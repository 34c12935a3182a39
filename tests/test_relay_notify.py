"""The relay's webhook notifications, received by a loopback receiver (a true boundary: Slack
and the team's own webhook service): Slack-compatible and HMAC-signed JSON messages, retries
with backoff, and a hanging or dead webhook that never holds up a request."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import DevServer, run_xtok
from relay_support import RUN_KEY, RelayProc, start_relay

from xtok.approval import oidc, relay_client, seal
from xtok.approval.ci import RunIdentity
from xtok.approval.oidc_standin import Issuer
from xtok.errors import ConfigError
from xtok.refs import parse_ref
from xtok.server.bootstrap import clean_environment

HMAC_KEY = "webhook-key-0123456789abcdef"


class Receiver:
    """Records every POST; /flaky fails twice per delivery, /hang waits for `release`."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.release = threading.Event()
        self.flaky_failures: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append((self.path, dict(self.headers), body))
                status = 200
                if self.path == "/hang":
                    receiver.release.wait(60)
                if self.path == "/flaky":
                    delivery = self.headers["X-Xtok-Delivery"]
                    failed = receiver.flaky_failures.get(delivery, 0)
                    if failed < 2:
                        receiver.flaky_failures[delivery] = failed + 1
                        status = 500
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for p, h, b in self.got if p == path]

    def wait(self, path: str, count: int) -> list[tuple[dict[str, str], bytes]]:
        for _ in range(600):
            if len(self.bodies(path)) >= count:
                return self.bodies(path)
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.bodies(path))} deliveries, expected {count}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    thread = threading.Thread(target=rec.server.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.release.set()
    rec.server.shutdown()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer().running() as running:
        yield running


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _webhooks_file(path: Path, receiver: Receiver) -> Path:
    path.write_text(
        "[notify]\nattempts = 4\nbackoff = 0.05\ntimeout = 60\n"
        f'[[webhook]]\nkind = "slack"\nurl = "{receiver.url}/slack"\n'
        f'[[webhook]]\nkind = "json"\nurl = "{receiver.url}/json"\nsecret = "{HMAC_KEY}"\n'
        f'[[webhook]]\nkind = "json"\nurl = "{receiver.url}/flaky"\nsecret = "{HMAC_KEY}"\n'
        f'[[webhook]]\nkind = "slack"\nurl = "{receiver.url}/hang"\n'
        f'[[webhook]]\nkind = "slack"\nurl = "http://127.0.0.1:{_closed_port()}/dead"\n'
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def relay(
    xtok_server: DevServer,
    issuer: Issuer,
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RelayProc]:
    tmp = tmp_path_factory.mktemp("notify")
    hooks = _webhooks_file(tmp / "webhooks.toml", receiver)
    running = start_relay(
        tmp / "relay", xtok_server.url, issuer.url, extra=("--webhooks", str(hooks))
    )
    yield running
    running.proc.terminate()
    running.proc.wait(timeout=30)


def _request(job: str) -> Any:
    request, _ = seal.new_request_in_memory(
        RunIdentity(ci="github-actions", job=job, build="12", commit="0badc0ffee"),
        (parse_ref("DB=prod/db"),),
        1800,
        "arn:aws:iam::123456789012:role/deployer",
    )
    return request


def test_each_new_request_is_announced_without_a_token(
    relay: RelayProc, receiver: Receiver, issuer: Issuer
) -> None:
    request = _request("acme/app <!channel> <@here> deploy")
    proof = issuer.token(oidc.binding_audience(request), repository="acme/app")
    posted = relay_client.Relay(relay.url).post(request.encode(), proof, None)
    # The post came back while one webhook still hangs and another is dead: never blocked.
    assert posted["id"] == request.id and not receiver.release.is_set()

    ((headers, body),) = receiver.wait("/json", 1)
    stamp = headers["X-Xtok-Timestamp"]
    expected = hmac.new(HMAC_KEY.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Xtok-Signature"] == "sha256=" + expected.hexdigest()
    message = json.loads(body)
    assert message["event"] == "request.pending" and message["id"] == request.id
    assert message["run"]["job"] == "acme/app <!channel> <@here> deploy"  # JSON: data, as is
    assert message["identity"] == {
        "verified": True,
        "issuer": issuer.url,
        "subject": "repo:acme/app:ref:refs/heads/main",
    }
    assert message["secrets"] == ["DB=prod/db"] and message["lifetime"] == 1800
    assert message["approve"] == f"xtok approve --relay {relay.url} --pick {request.id}"
    assert message["inbox"] == f"xtok inbox --relay {relay.url}"

    ((_, slack),) = receiver.wait("/slack", 1)
    text = json.loads(slack)["text"]
    assert set(json.loads(slack)) == {"text"}
    assert f"verified by {issuer.url}" in text and "DB=prod/db" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text and "<@here>" not in text
    assert f"xtok approve --relay {relay.url} --pick {request.id}" in text

    for _, body in receiver.bodies("/json") + receiver.bodies("/slack"):
        assert posted["wait_secret"].encode() not in body and proof.encode() not in body
        assert b"xtokr1." not in body and b"xtoks1." not in body

    # Retried with backoff: the flaky webhook got the same delivery three times.
    flaky = receiver.wait("/flaky", 3)
    assert len({h["X-Xtok-Delivery"] for h, _ in flaky}) == 1
    unproven = _request("nightly")
    relay_client.Relay(relay.url).post(unproven.encode(), None, RUN_KEY)
    later = [json.loads(b) for _, b in receiver.wait("/json", 2)]
    assert later[1]["identity"] == {"verified": False, "poster": "key:ci-without-oidc"}
    assert "UNPROVEN" in json.loads(receiver.wait("/slack", 2)[1][1])["text"]
    receiver.release.set()


def test_webhooks_file_must_be_private_and_well_formed(
    xtok_server: DevServer, receiver: Receiver, tmp_path: Path
) -> None:
    hooks = _webhooks_file(tmp_path / "webhooks.toml", receiver)
    args = ["relay", "--listen", "127.0.0.1:0", "--data", str(tmp_path / "d")]
    args += ["--approver", "arn:aws:iam::123456789012:user/a", "--webhooks", str(hooks)]
    env = clean_environment()
    hooks.chmod(0o640)
    res = run_xtok(args, env)
    assert res.code == int(ConfigError.exit_code)
    assert "readable by others" in res.err and f"chmod 600 {hooks}" in res.err
    assert receiver.url not in res.err and HMAC_KEY not in res.err
    hooks.write_text('[[webhook]]\nkind = "slack"\nurl = "http://example.com/x"\n')
    hooks.chmod(0o600)
    res = run_xtok(args, env)
    assert res.code == int(ConfigError.exit_code) and "https://" in res.err
    hooks.write_text(f'[[webhook]]\nkind = "json"\nurl = "{receiver.url}/json"\n')
    res = run_xtok(args, env)
    assert res.code == int(ConfigError.exit_code) and "secret of 16+" in res.err
    assert os.stat(hooks).st_mode & 0o077 == 0
