"""Reliability of the local endpoint: no acknowledged write lost to SIGKILL, and 200
concurrent clients served without an error. Loops are bounded in count and time."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from conftest import Peer, Server


def test_sigkill_loses_no_acknowledged_write(
    server: tuple[Server, Peer], initialised: tuple[Path, Path, dict[str, str]]
) -> None:
    srv, peer = server
    sm = peer.client("secretsmanager")
    sm.create_secret(Name="durable/s", SecretString="v0")
    acknowledged: dict[str, str] = {}
    stop = threading.Event()

    def writer() -> None:
        client = peer.client("secretsmanager")
        for i in range(5000):  # bounded; the kill ends it much sooner
            if stop.is_set():
                return
            try:
                version = client.put_secret_value(SecretId="durable/s", SecretString=f"v{i}")
            except (BotoCoreError, ClientError):
                return  # the server died: this write was never acknowledged
            acknowledged[version["VersionId"]] = f"v{i}"

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.stop(signal.SIGKILL)
    stop.set()
    thread.join(timeout=30)
    assert len(acknowledged) >= 50
    conn = sqlite3.connect(srv.data / "xtok.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    srv.start()
    restarted = Peer(peer.name, srv.url, peer.key_id, peer.secret_key)
    sm = restarted.client("secretsmanager")
    for version_id, value in acknowledged.items():
        got = sm.get_secret_value(SecretId="durable/s", VersionId=version_id)
        assert got["SecretString"] == value
    newest = max(acknowledged.values(), key=lambda v: int(v[1:]))
    assert sm.get_secret_value(SecretId="durable/s")["SecretString"] in (
        newest,
        f"v{int(newest[1:]) + 1}",
    )  # the write in flight at the kill may have landed


def test_200_concurrent_clients_get_no_errors(server: tuple[Server, Peer]) -> None:
    _, peer = server
    peer.client("secretsmanager").create_secret(Name="busy/s", SecretString="shared")
    start = threading.Barrier(200, timeout=60)

    def client_run(_: int) -> list[str]:
        sm = peer.client("secretsmanager")
        start.wait()
        return [sm.get_secret_value(SecretId="busy/s")["SecretString"] for _ in range(3)]

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(client_run, range(200)))
    assert results == [["shared"] * 3] * 200
