"""`xtok demo`, the README's main job, runs to the end on a fresh endpoint and checks itself."""

from __future__ import annotations

import subprocess
import sys

from conftest import base_env


def test_demo_runs_the_whole_flow() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "xtok", "demo"],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for expected in (
        "deploying with EXAMPLE_CREDENTIAL=***",
        "refused by the endpoint: AccessDeniedException",
        "token expired at",
        "refused by the endpoint: ExpiredTokenException",
        "a new session works",
        "identity: VERIFIED by",  # the relay scene: a proven request, approved
        "deployed with ***",
        "audit log intact",
        "xtok inbox --relay",  # the closing summary points approvers to the browser inbox
    ):
        assert expected in out, expected
    assert "Traceback" not in proc.stderr
    # The audit trail names who presented the expired credentials, not just "-".
    assert any(
        "ExpiredTokenException" in line and "assumed-role/xtok-ci/short-demo" in line
        for line in out.splitlines()
    )
