"""The Jenkins shared library (integrations/jenkins/vars), run without Jenkins.

Debian's `groovy` runs tests/jenkins/harness.groovy, which loads a vars file with stubbed steps
(`sh`, `input`, `password`, `withEnv`, `error`, `echo`) that record every call; a step the
library calls without a stub fails loudly. Jenkins itself cannot run here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

VARS = ROOT / "integrations" / "jenkins" / "vars"
HARNESS = ROOT / "tests" / "jenkins" / "harness.groovy"
# Debian's groovy launcher looks for a JDK path that is absent; point it at the installed one.
JDKS = sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*"))


def run(step: str, scenario: str) -> dict[str, Any]:
    assert shutil.which("groovy"), "Debian's groovy is missing: scripts/test installs it"
    env = {**os.environ, "JAVA_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    if JDKS:
        env["JAVA_HOME"] = str(JDKS[0])
    proc = subprocess.run(
        ["groovy", str(HARNESS), str(VARS / f"{step}.groovy"), scenario],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def steps(record: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in record["calls"] if c["step"] == name]


def test_approval_flow_never_puts_the_token_in_a_script() -> None:
    record = run("withExplodingToken", "approve")
    token, request, ticket = record["sealed"], record["request"], record["ticket"]
    request_sh, run_sh = steps(record, "sh")
    assert request_sh["script"] == (
        "'xtok' 'request' '--secret' 'DB_PASS=prod/db' '--secret' 'API=prod/api#token' "
        "'--duration' '20m' '--role' 'arn:aws:iam::123456789012:role/xtok-ci'"
    )
    (asked,) = steps(record, "input")
    assert asked["id"] == "XtokToken" and asked["submitter"] == "ops"
    assert request in asked["message"] and ticket not in asked["message"]
    assert (
        f"'xtok' 'approve' '{request}' '--jenkins' 'https://ci.example/job/deploy/42/'"
        in asked["message"]
    )
    assert asked["parameters"][0]["kind"] == "password"
    assert run_sh["script"] == (
        "'xtok' 'run' '--sealed' '--token-env' 'XTOK_TOKEN' '--' ./deploy.sh --env prod"
    )
    assert run_sh["env"] == {"XTOK_TOKEN": token, "XTOK_TICKET": ticket}
    # The input's value (a hudson.util.Secret) was read with getPlainText(), not toString().
    assert not steps(record, "Secret.toString")
    for call in steps(record, "sh") + steps(record, "echo"):
        shown = json.dumps(call.get("script") or call.get("text"))
        assert token not in shown and ticket not in shown


def test_relay_mode_runs_one_process_with_the_build_id_token() -> None:
    record = run("withExplodingToken", "relay")
    assert not steps(record, "input")  # no input step: the approver needs no Jenkins token
    (bound,) = steps(record, "withCredentials")
    assert bound["bindings"] == [
        {"kind": "string", "credentialsId": "xtok-id-token", "variable": "XTOK_OIDC_TOKEN"}
    ]
    (only,) = steps(record, "sh")
    assert only["script"] == (
        "'xtok' 'run' '--relay' 'https://relay.example.com' '--secret' 'DB_PASS=prod/db' "
        "'--duration' '15m' '--role' 'arn:aws:iam::123456789012:role/xtok-ci' '--' ./deploy.sh"
    )
    assert only["env"] == {"XTOK_OIDC_TOKEN": "value-of-xtok-id-token"}


def test_relay_mode_without_oidc_uses_the_relay_key() -> None:
    record = run("withExplodingToken", "relay-unproven")
    (bound,) = steps(record, "withCredentials")
    assert bound["bindings"][0]["variable"] == "XTOK_RELAY_KEY"
    (only,) = steps(record, "sh")
    assert only["script"].startswith("'xtok' 'run' '--relay' 'https://relay.example.com' ")


def test_aborted_input_runs_nothing() -> None:
    record = run("withExplodingToken", "abort")
    assert len(steps(record, "sh")) == 1  # only `xtok request`
    assert not steps(record, "withEnv")
    assert record["calls"][-1] == {
        "step": "failed",
        "message": "withExplodingToken: approval aborted or timed out; the command was not run",
    }


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("bad-secret", "invalid secret entry DB PASS"),
        ("no-command", "give the command to run"),
        ("no-submitter", "submitter: 'user-or-group' is required"),
    ],
)
def test_bad_arguments_fail_before_any_step(scenario: str, message: str) -> None:
    record = run("withExplodingToken", scenario)
    assert not steps(record, "sh") and not steps(record, "input")
    assert message in record["calls"][-1]["message"]


def test_get_temp_creds_keeps_the_write_up_behaviour() -> None:
    record = run("getTempCreds", "legacy")
    (shown,) = steps(record, "sh")
    assert shown["script"].startswith("echo 'aws sts get-session-token --duration-seconds 900")
    (asked,) = steps(record, "input")
    assert asked["parameters"] == [{"kind": "password", "name": "tempCred"}]
    assert record["result"] == record["sealed"]  # whatever was entered is returned, as text
    assert not steps(record, "Secret.toString")
    assert "prefer withExplodingToken" in steps(record, "echo")[0]["text"]
