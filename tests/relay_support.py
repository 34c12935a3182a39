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
