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


def scene(out: str, title: str) -> str:
    """The part of the demo's output under the scene title that contains `title`."""
    (part,) = [p for p in re.split(r"\n(?=== )", out) if title in p.splitlines()[0]]
    return part


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
        "identity: VERIFIED by",  # the relay scene: a proven request, approved
        "deployed with ***",
        "audit log intact",
        "xtok inbox --relay",  # the closing summary points approvers to the browser inbox
    ):
        assert expected in demo, expected


def test_commands_are_shown_whole_and_only_credentials_are_cut(demo: str) -> None:
    lines = demo.splitlines()
    cut = [line for line in lines if "characters" in line and "…" in line]
    assert cut, "the tokens the demo handles are mentioned"
    for line in cut:  # each cut says what was cut and why
        assert re.match(r"^  xtok[rst]?1\.… \(\d+ characters; .+", line), line
    before_the_audit_table = demo.split(scene(demo, "audit trail"))[0].splitlines()
    assert max(len(line) for line in before_the_audit_table) <= 100, "long lines are wrapped"
    assert not re.search(r"xtok[rst]?1\.[A-Za-z0-9_-]{12}", demo.replace("xtokr1.ey", "")), (
        "a token was printed"
    )
    # The role setup's long output (the aws calls it made) is there whole, not cut.
    assert "sts:SetSourceIdentity" in demo.replace("\n      ", "")


def test_the_mfa_step_runs_xtoks_own_mfa_options(demo: str) -> None:
    mints = [c for c in commands(demo) if c.startswith("alice$ xtok token") and "--for" in c]
    assert len(mints) == 3
    assert all("--mfa-serial arn:aws:iam::123456789012:mfa/alice --mfa-code " in c for c in mints)
    assert "computed from the device's seed" in demo
    refused = scene(demo, "Without MFA").replace("\n      ", " ")
    assert "tip: the role's trust policy does not admit you" in refused  # not about a token's scope
    assert "pass --mfa-serial ARN" in refused
    assert "get-session-token" not in demo  # no MFA session obtained out of sight


def test_the_explosion_is_shown_mint_run_countdown_refusal(demo: str) -> None:
    explosion = scene(demo, "A token explodes")
    assert "--duration 5s" in explosion and "explodes at" in explosion
    assert "fetched C (" in explosion  # what the first run printed
    assert "s to go" in explosion  # the countdown
    assert "xtok: error: token expired at" in explosion and "(exit status 202" in explosion


def test_the_sealed_flow_is_shown_and_replays_are_refused(demo: str) -> None:
    sealed = scene(demo, "Sealed tokens")
    shown = commands(sealed)
    assert any(c.startswith("pipeline$ xtok request --secret") for c in shown)
    assert any(c.startswith('alice$ xtok approve "$REQUEST_CODE"') for c in shown)
    runs = [c for c in shown if "xtok run --sealed" in c]
    assert len(runs) == 3  # opened once, then again, then in another run
    assert "deploying with EXAMPLE_CREDENTIAL=***" in sealed
    assert sealed.count("(exit status 201: refused") == 2
    assert "xtok: approve this run?" in sealed  # what alice approves is on the screen
    # Each run keeps its ticket (line 2 of `xtok request`, a secret): cut, never printed.
    assert sealed.count("xtokt1.… (") == 2
    assert sum(c.endswith("$ export XTOK_TICKET=…") for c in shown) == 2


def test_the_relay_scene_runs_a_proven_request_end_to_end(demo: str) -> None:
    relay = scene(demo, "through the relay")
    flat = relay.replace("\n      ", " ").replace("\n    ", " ").replace("\n  ", " ")
    shown = commands(relay)
    (job,) = [c for c in shown if c.startswith("pipeline$ xtok run --relay http://127.0.0.1:")]
    assert "--sealed" not in job  # the job needs no request code, no ticket, no token
    (rid,) = re.findall(r"proven by the CI's OIDC token xtok: approver: .* --pick (\w+)", flat)
    (picked,) = [c for c in shown if c.startswith("alice$ xtok approve --relay") and "--pick" in c]
    assert f"--pick {rid} --yes --mfa-serial" in picked
    screen, after = flat.split("alice$ xtok approve --relay")[-1].split("sealed token posted")
    assert "identity: VERIFIED by http://127.0.0.1:" in screen
    assert "repository = acme/app" in screen
    assert "approved by arn:aws:iam::123456789012:user/alice" in after
    assert "deployed with ***" in after  # the waiting job ran the step, masked
    assert "The relay learns nothing usable" in after


def test_the_audit_table_has_a_header_and_aligned_columns(demo: str) -> None:
    rows = [
        line for line in scene(demo, "audit trail").splitlines() if re.match(r"^  (#|\d+) ", line)
    ]
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
