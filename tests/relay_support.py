"""Helpers shared by the relay tests: a real `xtok relay` subprocess on loopback."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import ACCOUNT

from xtok.server.bootstrap import clean_environment

RUN_KEY = "relay-key-for-tests-0123456789"
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:user/admin"


@dataclass(frozen=True)
class RelayProc:
    url: str
    proc: subprocess.Popen[str]


def start_relay(
    data: Path, sts_url: str, issuer_url: str, *approvers: str, extra: tuple[str, ...] = ()
) -> RelayProc:
    keys = data / "run-keys"
    data.mkdir(parents=True, exist_ok=True)
    keys.write_text(f"ci-without-oidc {hashlib.sha256(RUN_KEY.encode()).hexdigest()}\n")
    args = ["--listen", "127.0.0.1:0", "--data", str(data), "--sts-url", sts_url]
    args += ["--trust-issuer", issuer_url, "--run-keys", str(keys), *extra]
    for arn in approvers or (ADMIN_ARN,):
        args += ["--approver", arn]
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtok", "relay", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_environment(),
    )
    line = proc.stderr.readline() if proc.stderr else ""
    found = re.search(r"relay on (\S+)", line)
    if not found:
        proc.kill()
        raise AssertionError(f"relay did not start: {line}")
    return RelayProc(found.group(1), proc)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate (and its key, 0600) for 127.0.0.1, signed by itself."""
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
