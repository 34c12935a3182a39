"""The audit log of a real `xtok server`, read back with `xtok audit`: what a caller wrote cannot
forge rows in its output, an unknown action is recorded as unknown, and removing rows from
the end (or all of them) is reported by `--verify` like any other tampering."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import Peer, Server, base_env, run_xtok
from test_server_sigv4 import FORM, JSON, send, sign

FORGED = (
    "x\n     9 2026-01-01T00:00:00.000000Z allow                    secretsmanager:DeleteSecret"
    "     * arn:aws:iam::123456789012:user/admin\r\x1b[2K\u202eevil\u2028\x00"
)


def audit(data: Path, key_file: Path, *extra: str) -> tuple[int, str, str]:
    res = run_xtok(
        ["audit", "--data", str(data), "--master-key-file", str(key_file), *extra], base_env()
    )
    return res.code, res.out, res.err


def test_what_a_caller_wrote_cannot_forge_rows(
    server: tuple[Server, Peer], initialised: tuple[Path, Path, dict[str, str]]
) -> None:
    srv, peer = server
    data, key_file, _ = initialised
    with pytest.raises(ClientError):
        peer.client("secretsmanager").get_secret_value(SecretId=FORGED)
    srv.stop()
    rows = json.loads(audit(data, key_file, "--json")[1])
    assert any(FORGED in (r["resource"] or "") for r in rows)  # recorded as sent
    code, out, _ = audit(data, key_file)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(rows)
    assert all(re.match(r"^ *\d+ \d{4}-\d\d-\d\dT", line) for line in lines), out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2028\u2029]", out)
    assert "x\\x0a     9 2026" in out and "\\u202eevil\\u2028\\x00" in out


def test_an_unknown_action_is_recorded_as_such(
    server: tuple[Server, Peer], initialised: tuple[Path, Path, dict[str, str]]
) -> None:
    srv, peer = server
    data, key_file, _ = initialised
    query = b"Action=DeleteSecret&Version=2011-06-15"
    assert send(peer, query, sign(peer, query, FORM, service="sts"))[0] == 400
    target = {**JSON, "X-Amz-Target": "secretsmanager.RotateSecrets"}
    assert send(peer, b"{}", sign(peer, b"{}", target, service="secretsmanager"))[0] == 400
    target = {**JSON, "X-Amz-Target": "kms.Decrypt"}
    assert send(peer, b"{}", sign(peer, b"{}", target, service="secretsmanager"))[0] == 400
    srv.stop()
    actions = [r["action"] for r in json.loads(audit(data, key_file, "--json")[1])]
    assert actions[-3:] == ["sts:(unknown)"] + ["secretsmanager:(unknown)"] * 2


@pytest.mark.parametrize(
    ("tamper", "report"),
    [
        ("DELETE FROM audit WHERE seq > 3", "ends at row 3 but its head names row 5"),
        ("DELETE FROM audit", "ends at row 0 but its head names row 5"),
        ("DELETE FROM meta WHERE key = 'audit_head'", "head is missing"),
        (
            "DELETE FROM audit WHERE seq > 3; DELETE FROM meta WHERE key = 'audit_head'",
            "head is missing",
        ),
    ],
)
def test_removing_the_last_rows_is_detected(
    server: tuple[Server, Peer],
    initialised: tuple[Path, Path, dict[str, str]],
    tmp_path: Path,
    tamper: str,
    report: str,
) -> None:
    srv, peer = server
    data, key_file, _ = initialised
    sts = peer.client("sts")
    for _ in range(5):
        sts.get_caller_identity()
    srv.stop()
    assert audit(data, key_file, "--verify")[0] == 0
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    conn = sqlite3.connect(copy / "xtok.db")
    conn.execute("DROP TRIGGER audit_append_only_delete")  # an attacker with the file
    conn.executescript(tamper)
    conn.close()
    code, _, err = audit(copy, key_file, "--verify")
    assert code == 211 and report in err, err
