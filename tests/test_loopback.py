"""Loopback-ness, decided in one place (`xtok.loopback`) for every check that allows plain
http:// only on this machine: the Jenkins build URL, the relay URL, webhooks, OIDC issuers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from xtok.approval import jenkins, oidc, relay_client
from xtok.errors import Error
from xtok.loopback import is_loopback
from xtok.relay import notify

LOOPBACK = ["localhost", "127.0.0.1", "127.8.9.10", "::1"]
# Names that only start like loopback are resolved by DNS, which may send them anywhere.
ELSEWHERE = ["localhost.example", "127.0.0.1.nip.io", "127.evil.example", "10.0.0.1", "::2"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", [*ELSEWHERE, "0.0.0.0", "", None])  # noqa: S104 - a value
def test_other_hosts(host: str | None) -> None:
    assert not is_loopback(host)


def _url(host: str, path: str = "/") -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:8080{path}"


def _allows(check: Callable[[], object]) -> bool:
    try:
        check()
    except Error:
        return False
    return True


def _webhook(tmp_path: Path, url: str) -> None:
    path = tmp_path / "hooks.toml"
    path.write_text(f'[[webhook]]\nkind = "slack"\nurl = "{url}"\n')
    path.chmod(0o600)
    notify.load(path)


@pytest.mark.parametrize("host", LOOPBACK + ELSEWHERE)
def test_every_plain_http_check_agrees(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _url(host, "/job/deploy/42/")
    monkeypatch.setenv("JENKINS_URL", _url(host))
    monkeypatch.setenv("JENKINS_USER_ID", "alice")
    monkeypatch.setenv("JENKINS_API_TOKEN", "not-a-real-token")
    checks = {
        "jenkins": lambda: jenkins.check_build_url(build),
        "relay": lambda: relay_client.check_url(_url(host)),
        "webhook": lambda: _webhook(tmp_path, _url(host, "/hook")),
        "oidc": lambda: oidc._check_url(_url(host, "/jwks"), "issuer"),
    }
    allowed = {name: _allows(check) for name, check in checks.items()}
    assert allowed == dict.fromkeys(checks, host in LOOPBACK)
