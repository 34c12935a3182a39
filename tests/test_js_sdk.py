"""A second, independent client: the AWS SDK for JavaScript v3 (tests/js/conformance.mjs, versions
pinned in tests/js/package.json and package-lock.json) against `xtok server --dev`, covering the
STS, Secrets Manager and IAM operations the endpoint serves and their error codes and HTTP
statuses. `scripts/test` installs it (`npm ci`); in CI (CI=true) a missing node or SDK fails
this test rather than skipping it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CANARY, ROOT, DevServer, Peer, aws_env, make_peer

from xtok.server.totp import STEP, code_at

JS = ROOT / "tests" / "js"


def _node() -> str:
    node = shutil.which("node")
    installed = (JS / "node_modules" / "@aws-sdk" / "client-sts").is_dir()
    if node is None or not installed:
        why = "node is missing" if node is None else "the SDK is not installed (npm ci in tests/js)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}: scripts/test installs it in CI")
        pytest.skip(f"{why}; scripts/test installs it")
    return node


def _mfa_user(peer: Peer, unique: str) -> dict[str, str]:
    """A user with a virtual MFA device and three codes: two consecutive ones to enable it, and
    the next step's for GetSessionToken (TOTP is computed here, by xtok's own `cryptography`)."""
    iam = peer.client("iam")
    name = f"js-mfa-{unique}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    seed = base64.b32decode(device["Base32StringSeed"])
    now = time.time()
    codes = [code_at(seed, now - STEP), code_at(seed, now), code_at(seed, now + STEP)]
    return {
        "XTOK_MFA_USER": name,
        "XTOK_MFA_SERIAL": device["SerialNumber"],
        "XTOK_MFA_CODES": ",".join(codes),
        "XTOK_MFA_KEY_ID": key["AccessKeyId"],
        "XTOK_MFA_SECRET_KEY": key["SecretAccessKey"],
    }


def test_aws_sdk_for_javascript_v3_conforms(
    xtok_server: DevServer, tmp_path: Path, request: pytest.FixtureRequest, unique: str
) -> None:
    node = _node()
    env = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    env.update(XTOK_CONFORMANCE_VALUE=CANARY, HOME=str(tmp_path))
    env.update(_mfa_user(make_peer(request, "xtok-server"), unique))
    proc = subprocess.run(
        [node, str(JS / "conformance.mjs")],
        env=env,
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    checks = [line for line in lines if "check" in line]
    failed = [f"{c['check']}: {c['detail']}" for c in checks if not c["ok"]]
    assert not failed, "\n".join(failed)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(checks) >= 50 and lines[-1] == {"summary": True, "checks": len(checks), "failed": 0}
    assert CANARY not in proc.stdout + proc.stderr
