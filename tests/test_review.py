"""What an approver reviews: refusals of control/bidi values, the differences from the last
approved run of the same job (the approver's own 0600 record), on `xtok approve`'s screen."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

from conftest import ACCOUNT, CANARY, DevServer, aws_env, run_xtok

from xtok.approval import review, seal
from xtok.approval.ci import RunIdentity
from xtok.refs import parse_ref
from xtok.server.bootstrap import clean_environment

ROLE = "arn:aws:iam::123456789012:role/deployer"


def _request(*specs: str, duration: int = 900, **who: str) -> seal.RequestCode:
    identity = RunIdentity(**{"ci": "github-actions", "job": "acme/deploy", **who})
    refs = tuple(parse_ref(s) for s in specs)
    return seal.new_request_in_memory(identity, refs, duration, ROLE)[0]


def test_differences_from_the_last_approved_run_of_the_job(tmp_path: Path) -> None:
    history = review.History(tmp_path / "state" / "approved.json")
    first = _request("DB=prod/db")
    assert review.differences(first, ROLE, True, history.last(first)) == [
        "first approval of this job (nothing to compare with)"
    ]
    history.record(first, ROLE, proven=True)
    assert stat.S_IMODE(os.stat(history.path).st_mode) == 0o600
    assert review.differences(first, ROLE, True, history.last(first)) == []
    more = _request("DB=prod/db", "KEY=prod/signing", duration=3600)
    assert review.differences(more, ROLE + "2", False, history.last(more)) == [
        "new secret prod/signing",
        "longer lifetime 1h00m00s (was 15m00s)",
        f"other role {ROLE}2 (was {ROLE})",
        "unproven identity (the last run was verified)",
    ]
    other_job = _request("KEY=prod/signing", job="acme/other")
    assert history.last(other_job) is None
    shorter = _request("DB=prod/db", duration=900)
    history.record(more, ROLE, proven=False)
    assert review.differences(shorter, ROLE, False, history.last(shorter)) == []


def test_approve_screen_shows_what_differs(xtok_server: DevServer, tmp_path: Path) -> None:
    unique = uuid.uuid4().hex[:8]
    admin = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    admin["XDG_STATE_HOME"] = str(tmp_path / "approver-state")
    for name in ("db", "signing"):
        assert run_xtok(["secret", "put", f"rv-{unique}/{name}"], admin, stdin=CANARY).code == 0
    role = ["--role-name", f"rv-{unique}", "--trust", f"arn:aws:iam::{ACCOUNT}:user/admin"]
    made = run_xtok(["setup", "aws", *role, "--unsafe-no-mfa", "--prefix", f"rv-{unique}/"], admin)
    assert made.code == 0, made.err
    run_env = {**clean_environment(), "XTOK_STATE_DIR": str(tmp_path / "run")}
    ask = [
        "request",
        "--job",
        f"deploy-{unique}",
        "--role",
        f"arn:aws:iam::{ACCOUNT}:role/rv-{unique}",
    ]
    first = run_xtok([*ask, "--secret", f"DB=rv-{unique}/db"], run_env).out.splitlines()[0]
    shown = run_xtok(["approve", first, "--yes"], admin)
    assert shown.code == 0, shown.err
    assert "differs:  first approval of this job" in shown.err
    second = run_xtok(
        [*ask, "--secret", f"DB=rv-{unique}/db", "--secret", f"KEY=rv-{unique}/signing"], run_env
    ).out.splitlines()[0]
    shown = run_xtok(["approve", second, "--yes"], admin)
    assert shown.code == 0, shown.err
    assert f"differs:  new secret rv-{unique}/signing" in shown.err
    assert "first approval" not in shown.err
