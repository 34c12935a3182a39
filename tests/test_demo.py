"""`xtok demo`, the README's main job, runs to the end on a fresh endpoint, checks itself, and
tells the story plainly: commands whole, no live token printed, nothing done out of sight."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import base_env

# What a shown command line looks like: "who$ …", continued by "    …" after a trailing "\".
_PROMPT = re.compile(r"^(admin|alice|pipeline|attacker|other-job)\$ ")


@pytest.fixture(scope="module")
def demo() -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "xtok", "demo"],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return proc.stdout


def commands(out: str) -> list[str]:
    """The shown commands, each joined back into one line."""
    joined, current = [], None
    for line in out.splitlines():
        if _PROMPT.match(line):
            current = line
        elif current is not None and line.startswith("    "):
            current = current[:-2] + " " + line.strip()
        else:
            current = None
            continue
        if not current.endswith(" \\"):
            joined.append(current)
    return joined


def test_demo_runs_the_whole_flow(demo: str) -> None:
    for expected in (
        "deploying with EXAMPLE_CREDENTIAL=***",
        "An error occurred (AccessDeniedException)",
        "An error occurred (ExpiredTokenException)",
        "a new session works",
        "audit log intact",
    ):
        assert expected in demo, expected


def test_commands_are_shown_whole_and_only_credentials_are_cut(demo: str) -> None:
    lines = demo.splitlines()
    cut = [line for line in lines if "characters" in line and "…" in line]
    assert cut, "the tokens the demo handles are mentioned"
    for line in cut:  # each cut says what was cut and why
        assert re.match(r"^  xtok[rs]?1\.… \(\d+ characters; .+", line), line
    before_the_audit_table = demo.split("== 11.")[0].splitlines()
    assert max(len(line) for line in before_the_audit_table) <= 100, "long lines are wrapped"
    assert not re.search(r"xtok[rs]?1\.[A-Za-z0-9_-]{12}", demo.replace("xtokr1.ey", "")), (
        "a token was printed"
    )
    # The role setup's long output (the aws calls it made) is there whole, not cut.
    assert "sts:SetSourceIdentity" in demo.replace("\n      ", "")


def test_the_mfa_step_runs_xtoks_own_mfa_options(demo: str) -> None:
    mints = [c for c in commands(demo) if c.startswith("alice$ xtok token") and "--for" in c]
    assert len(mints) == 3
    assert all("--mfa-serial arn:aws:iam::123456789012:mfa/alice --mfa-code " in c for c in mints)
    assert "computed from the device's seed" in demo
    refused = demo.split("== 4.")[1].split("== 5.")[0].replace("\n      ", " ")
    assert "tip: the role's trust policy must name you" in refused  # not about a token's scope
    assert "pass --mfa-serial ARN" in refused
    assert "get-session-token" not in demo  # no MFA session obtained out of sight


def test_the_explosion_is_shown_mint_run_countdown_refusal(demo: str) -> None:
    scene = demo.split("== 8.")[1].split("== 9.")[0]
    assert "--duration 5s" in scene and "explodes at" in scene
    assert "fetched C (" in scene  # what the first run printed
    assert "s to go" in scene  # the countdown
    assert "xtok: error: token expired at" in scene and "(exit status 202" in scene


def test_the_sealed_flow_is_shown_and_replays_are_refused(demo: str) -> None:
    scene = demo.split("== 9.")[1].split("== 10.")[0]
    shown = commands(scene)
    assert any(c.startswith("pipeline$ xtok request --secret") for c in shown)
    assert any(c.startswith('alice$ xtok approve "$REQUEST_CODE"') for c in shown)
    runs = [c for c in shown if "xtok run --sealed" in c]
    assert len(runs) == 3  # opened once, then again, then in another run
    assert "deploying with EXAMPLE_CREDENTIAL=***" in scene
    assert scene.count("(exit status 201: refused") == 2
    assert "xtok: approve this run?" in scene  # what alice approves is on the screen


def test_the_audit_table_has_a_header_and_aligned_columns(demo: str) -> None:
    scene = demo.split("== 11.")[1]
    rows = [line for line in scene.splitlines() if re.match(r"^  (#|\d+) ", line)]
    header, body = rows[0], rows[1:]
    assert "time (UTC)" in header and "approved by" in header and "resource" in header
    at = header.index("action")
    assert {row[at:].split()[0] for row in body} >= {
        "sts:AssumeRole",
        "secretsmanager:GetSecretValue",
    }
    who = header.index("approved by")
    reads = [row for row in body if "GetSecretValue" in row]
    assert all(row[who:].split()[0] == "alice" for row in reads)
    assert any("ExpiredTokenException" in row and "deploy-42b" in row for row in reads)


def test_the_demo_ends_with_a_summary_and_the_next_command(demo: str) -> None:
    tail = demo.split("== What you saw")[1]
    assert "sealed token" in tail.lower()
    assert "Next:" in tail and "xtok server --dev" in tail
