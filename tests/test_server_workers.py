"""`xtok server --workers N`: N processes share the address and the database. A change made
through one worker applies to the next request in every other (the key holders each remembers
are invalidated through the database), and writes from all of them keep one intact audit
chain."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Peer, base_env, run_xtok
from test_server_sigv4 import FORM, send, sign

from xtok.server.bootstrap import spawn_dev
from xtok.server.crypto import encode_key, new_key, write_private

DEV = [sys.executable, "-m", "xtok", "server", "--dev", "--listen", "127.0.0.1:0"]
CALLER = b"Action=GetCallerIdentity&Version=2011-06-15"


def children(pid: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        if len(found) == 2:
            return found
        time.sleep(0.05)
    pytest.fail("the workers did not start")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Peer, list[int], Path, Path]]:
    data, key_file = tmp_path / "data", tmp_path / "master.key"
    write_private(key_file, encode_key(new_key()) + "\n")
    proc, exports = spawn_dev(
        "--workers", "2", "--data", str(data), "--master-key-file", str(key_file)
    )
    peer = Peer(
        "xtok-server",
        exports["AWS_ENDPOINT_URL"],
        exports["AWS_ACCESS_KEY_ID"],
        exports["AWS_SECRET_ACCESS_KEY"],
    )
    yield peer, children(proc.pid), data, key_file
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def test_a_change_through_one_worker_applies_in_all(
    workers: tuple[Peer, list[int], Path, Path],
) -> None:
    admin, pids, _, _ = workers
    iam = admin.client("iam")
    iam.create_user(UserName="spread")
    key = iam.create_access_key(UserName="spread")["AccessKey"]
    user = Peer("user", admin.url, key["AccessKeyId"], key["SecretAccessKey"])
    headers = sign(user, CALLER, FORM, service="sts")
    before = [cpu_ticks(pid) for pid in pids]
    with ThreadPoolExecutor(max_workers=8) as pool:  # each request on a new connection
        statuses = list(pool.map(lambda _: send(user, CALLER, headers)[0], range(300)))
    assert statuses == [200] * 300
    busy = [cpu_ticks(pid) - ticks for pid, ticks in zip(pids, before, strict=True)]
    assert all(busy), f"a worker served none of the requests: {busy}"
    iam.delete_access_key(UserName="spread", AccessKeyId=key["AccessKeyId"])
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: send(user, CALLER, headers)[0], range(100)))
    assert set(statuses) == {403}


def test_writes_from_all_workers_keep_one_intact_audit_chain(
    workers: tuple[Peer, list[int], Path, Path],
) -> None:
    admin, _, data, key_file = workers
    admin.client("secretsmanager").create_secret(Name="shared/s", SecretString="v0")

    def write(i: int) -> str:
        sm = admin.client("secretsmanager")  # a connection of its own
        return str(sm.put_secret_value(SecretId="shared/s", SecretString=f"v{i}")["VersionId"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(write, range(80)))
    assert len(set(versions)) == 80
    args = ["audit", "--data", str(data), "--master-key-file", str(key_file)]
    res = run_xtok([*args, "--verify"], base_env())
    assert res.code == 0, res.err
    rows = run_xtok([*args, "--json"], base_env()).out
    assert rows.count('"secretsmanager:PutSecretValue"') == 80


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_every_worker_and_leaves_no_throwaway_data(
    tmp_path: Path, workers: str
) -> None:
    """Once it has served a request, and right after it printed its address."""
    for serve_first in (True, False):
        proc = subprocess.Popen(
            [*DEV, "--workers", workers],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**base_env(), "TMPDIR": str(tmp_path)},
        )
        assert proc.stdout is not None
        exports = dict(word.split("=", 1) for word in proc.stdout.readline().split()[1:])
        if serve_first:
            admin = Peer(
                "xtok-server",
                exports["AWS_ENDPOINT_URL"],
                exports["AWS_ACCESS_KEY_ID"],
                exports["AWS_SECRET_ACCESS_KEY"],
            )
            assert admin.client("sts").get_caller_identity()["Arn"].endswith(":user/admin")
            pids = children(proc.pid) if workers == "2" else []
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Traceback" not in err, err
        assert list(tmp_path.iterdir()) == []
        for pid in pids if serve_first else []:
            assert not Path(f"/proc/{pid}").exists(), "a worker outlived the server"
