"""Shared fixtures: moto's server on loopback, an `xtok` subprocess runner, the canary guard.

The canary is the secret value the suite stores and fetches. A hook fails any test whose
captured output (stdout, stderr, logs, failure text) contains it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from xtok.server.bootstrap import clean_environment, spawn_dev

CANARY = "canary-7f3a9c1e-NEVER-PRINT-ME"
ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
APPROVER = f"arn:aws:iam::{ACCOUNT}:user/alice"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    texts = [content for _, content in report.sections]
    texts.append(report.longreprtext or "")
    if any(CANARY in t for t in texts) and report.when == "call":
        report.outcome = "failed"
        report.longrepr = "the canary secret value appeared in the test's captured output"
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say next to the totals that the xfailed tests are expected failures, and why."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("xfailed", []):
        reason = str(getattr(report, "wasxfail", "")).removeprefix("reason: ") or "no reason given"
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in reasons.items():
        terminalreporter.write_line(f"{count} xfailed, as expected: {reason}")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's threaded server on 127.0.0.1 (a plumbing peer: it enforces no policy or expiry)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass(frozen=True)
class DevServer:
    """An `xtok server --dev` subprocess: its URL and the admin's keys."""

    url: str
    access_key_id: str
    secret_access_key: str


@pytest.fixture(scope="session")
def xtok_server() -> Iterator[DevServer]:
    """The real local endpoint on loopback, with sessions allowed down to 1 s (dev mode)."""
    proc, exports = spawn_dev("--min-duration", "1")
    yield DevServer(
        exports["AWS_ENDPOINT_URL"], exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]
    )
    proc.terminate()
    proc.wait(timeout=30)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def aws_env(
    endpoint: str,
    key_id: str = "AKIAIOSFODNN7EXAMPLE",
    secret_key: str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
) -> dict[str, str]:
    """An environment for one endpoint with long-term keys (by default AWS's doc example,
    which moto accepts)."""
    env = clean_environment()
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=key_id,
        AWS_SECRET_ACCESS_KEY=secret_key,
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
    )
    return env


def run_xtok(
    args: list[str],
    env: Mapping[str, str],
    *,
    stdin: str | bytes | None = None,
    allow_canary: bool = False,
    timeout: float = 60,
) -> Result:
    """Run the installed CLI as a user would, in a subprocess."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "xtok", *args],
        input=data,
        stdin=subprocess.DEVNULL if data is None else None,
        capture_output=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )
    result = Result(
        proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )
    if not allow_canary:
        assert CANARY not in result.both, "xtok printed the canary secret"
    assert "Traceback" not in result.err
    return result


@pytest.fixture
def unique() -> str:
    """A per-test name part: moto's state is shared by the whole session."""
    return uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Peer:
    """One AWS-compatible endpoint and its administrator's keys."""

    name: str
    url: str
    key_id: str
    secret_key: str

    def client(self, service: str, creds: Mapping[str, str] | None = None, **config: object) -> Any:
        import boto3
        from botocore.config import Config

        keys = creds or {"AccessKeyId": self.key_id, "SecretAccessKey": self.secret_key}
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys.get("SessionToken"),
            config=Config(retries={"max_attempts": 1}, **config),  # type: ignore[arg-type]
        )

    def env(self) -> dict[str, str]:
        return aws_env(self.url, self.key_id, self.secret_key)


def make_peer(request: pytest.FixtureRequest, name: str) -> Peer:
    if name == "moto":
        return Peer(
            "moto",
            request.getfixturevalue("moto_url"),
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
    server: DevServer = request.getfixturevalue("xtok_server")
    return Peer("xtok-server", server.url, server.access_key_id, server.secret_access_key)


class Server:
    def __init__(self, data: Path, key_file: Path) -> None:
        self.data, self.key_file = data, key_file
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xtok",
                "server",
                "--data",
                str(self.data),
                "--master-key-file",
                str(self.key_file),
                "--listen",
                "127.0.0.1:0",
            ],
            stderr=subprocess.PIPE,
            text=True,
            env=base_env(),
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        assert " on http://" in line, line
        self.url = line.rsplit(" on ", 1)[1].strip()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)


base_env = clean_environment


@pytest.fixture
def initialised(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    data, key_file = tmp_path / "data", tmp_path / "config" / "master.key"
    res = run_xtok(
        ["server", "init", "--data", str(data), "--master-key-file", str(key_file)], base_env()
    )
    assert res.code == 0, res.err
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    exports = dict(word.split("=", 1) for word in res.out.split()[1:])
    return data, key_file, exports


@pytest.fixture
def server(initialised: tuple[Path, Path, dict[str, str]]) -> Iterator[tuple[Server, Peer]]:
    data, key_file, exports = initialised
    srv = Server(data, key_file)
    srv.start()
    yield (
        srv,
        Peer(
            "xtok-server", srv.url, exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]
        ),
    )
    if srv.proc and srv.proc.poll() is None:
        srv.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its 0600 key, as PEM files in `directory`."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file
