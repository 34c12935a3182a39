"""Creating a data directory's first administrator, and running the HTTP server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xtok.errors import UsageError
from xtok.server.app import Endpoint
from xtok.server.ops import random_id, random_text

ADMIN = "admin"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class AdminKey:
    user: str
    access_key_id: str
    secret_access_key: str


def create_admin(endpoint: Endpoint) -> AdminKey:
    """The `admin` user with full rights and one access key (its secret is shown once)."""
    db, now = endpoint.db, endpoint.clock().timestamp()
    if db.one("SELECT 1 FROM users WHERE name = ?", ADMIN):
        raise UsageError(
            "this data directory is already initialised",
            tip="use its admin key, or start over with a new --data directory",
        )
    key_id, secret = random_id("AKIA"), random_text(40)
    with db.write() as conn:
        conn.execute("INSERT INTO users VALUES (?,?,?,?)", (ADMIN, random_id("AIDA"), "/", now))
        conn.execute(
            "INSERT INTO inline_policies VALUES ('user', ?, 'xtok-admin', ?)",
            (ADMIN, json.dumps(ADMIN_POLICY)),
        )
        conn.execute(
            "INSERT INTO access_keys VALUES (?,?,?,?,?)",
            (
                key_id,
                ADMIN,
                endpoint.sealer.seal(secret.encode(), f"access-key:{key_id}"),
                "Active",
                now,
            ),
        )
    return AdminKey(ADMIN, key_id, secret)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r} is not HOST:PORT", tip="e.g. 127.0.0.1:4566")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    return sock


def serve(
    endpoint: Endpoint,
    sock: socket.socket,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    read_timeout: float,
    workers: int = 1,
    relay: Callable[[], Any] | None = None,
) -> None:
    """Serve `endpoint` on `sock` until SIGTERM or SIGINT, in this process or, with
    `workers` > 1, in that many forked processes sharing the socket and the database; with
    `relay` (making an ASGI app), serve that under /relay too (dev mode). Each process makes
    its own relay: its store is SQLite too, and its waiters poll it."""
    from xtok.server.app import asgi_app
    from xtok.server.workers import run_workers

    def app_for(served: Endpoint) -> Any:
        aws = asgi_app(served)
        if relay is None:
            return aws
        from starlette.applications import Starlette
        from starlette.routing import Mount

        mounted = Starlette(routes=[Mount("/relay", relay())])

        async def app(scope: Any, receive: Any, send: Any) -> None:
            # A dispatcher, not a Mount, so the AWS endpoint sees the request path it signs.
            path = scope.get("path", "")
            target = mounted if path == "/relay" or path.startswith("/relay/") else aws
            await target(scope, receive, send)

        return app

    def run(served: Endpoint) -> None:
        serve_app(
            app_for(served), sock, tls_cert=tls_cert, tls_key=tls_key, read_timeout=read_timeout
        )

    if workers == 1:
        run(endpoint)
        return
    if relay is not None:
        relay()  # creates its database first: SQLite refuses workers switching it to WAL at once
    run_workers(workers, lambda: run(endpoint.reopen()))


def serve_app(
    app: Any,
    sock: socket.socket,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    read_timeout: float | None = None,
) -> None:
    """Run an ASGI app with uvicorn on a bound socket (the endpoint's and the relay's server);
    with `read_timeout`, a connection must deliver each request within that many seconds."""
    import uvicorn

    from xtok.server.transport import with_read_timeout
    from xtok.server.workers import Server

    config = uvicorn.Config(
        app,
        http=with_read_timeout(read_timeout) if read_timeout is not None else "auto",
        lifespan="off",
        log_level="warning",
        access_log=False,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
        server_header=False,
        # Any local caller could send X-Forwarded-For/-Proto: never let them set aws:SourceIp
        # or aws:SecureTransport (uvicorn trusts them from 127.0.0.1 by default).
        proxy_headers=False,
        date_header=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    Server(config).run(sockets=[sock])


def clean_environment() -> dict[str, str]:
    """This process's environment without AWS_* and XTOK_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "XTOK_"))}


def spawn_dev(
    *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start `xtok server --dev --listen 127.0.0.1:0 EXTRA…` as a subprocess (a clean
    environment plus `env`) and return it with the variables of the `export` line it prints
    (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtok", "server", "--dev", "--listen", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_environment(), **(env or {})},
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("export "):
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise UsageError(f"the dev endpoint did not start: {err.strip()[-300:]}")
    return proc, dict(word.split("=", 1) for word in line.split()[1:])
