"""A second, independent client: the AWS SDK for JavaScript v3 (tests/js/conformance.mjs, versions
pinned in tests/js/package.json and package-lock.json) against `xtok server --dev`, covering the
STS, Secrets Manager and IAM operations the endpoint serves and their error codes and HTTP
statuses. `scripts/test` installs it (`npm ci`); in CI (CI=true) a missing node or SDK fails
this test rather than skipping it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CANARY, ROOT, DevServer, aws_env

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


def test_aws_sdk_for_javascript_v3_conforms(xtok_server: DevServer, tmp_path: Path) -> None:
    env = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    env.update(XTOK_CONFORMANCE_VALUE=CANARY, HOME=str(tmp_path))
    proc = subprocess.run(
        [_node(), str(JS / "conformance.mjs")],
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
