"""The local endpoint: `xtok server`, `xtok server init`, `xtok audit`, `xtok demo`."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from xtok.cli.app import (
    cli,
    json_option,
    note,
    print_json,
    warn,
)
from xtok.display import shown
from xtok.errors import Error, ExitCode, UsageError

DEFAULT_LISTEN = "127.0.0.1:4566"


def _default_data() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "xtok" / "server"


def _default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "xtok" / "master.key"


data_option = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="XTOK_SERVER_DATA",
    show_envvar=True,
    help="Data directory (default: ~/.local/share/xtok/server).",
)
key_file_option = click.option(
    "--master-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Master key file (default: $XTOK_SERVER_MASTER_KEY, else ~/.config/xtok/master.key).",
)


def _master_key(path: Path | None) -> bytes:
    from xtok.server.crypto import MASTER_KEY_ENV, load_master_key

    if path is None and not os.environ.get(MASTER_KEY_ENV):
        path = _default_key_file()
    return load_master_key(path)


def _open_endpoint(data: Path | None, key_file: Path | None) -> Any:
    from xtok.server.app import Endpoint

    directory = data or _default_data()
    if not (directory / "xtok.db").exists():
        raise UsageError(f"no xtok server data in {directory}", tip="run `xtok server init`")
    return Endpoint(directory, _master_key(key_file))


def _exports(url: str, key: Any, region: str) -> str:
    return (
        f"export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID={key.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={key.secret_access_key} AWS_REGION={region} "
        f"AWS_DEFAULT_REGION={region}"
    )


@cli.group("server", invoke_without_command=True)
@data_option
@key_file_option
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    envvar="XTOK_SERVER_LISTEN",
    show_envvar=True,
    help="Address to listen on (port 0: any free port).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TLS certificate (PEM); with --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TLS private key (PEM).",
)
@click.option(
    "--dev",
    is_flag=True,
    help="A fresh endpoint with an admin (throw-away data and key unless --data and "
    "--master-key-file are given); prints `export AWS_…` lines for a shell.",
)
@click.option(
    "--min-duration",
    type=int,
    default=None,
    metavar="SECONDS",
    help="Allow sessions shorter than 900 s (only with --dev: for demos and tests).",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(0.1, 3600),
    default=20,
    show_default=True,
    metavar="SECONDS",
    envvar="XTOK_SERVER_READ_TIMEOUT",
    show_envvar=True,
    help="Close a connection that takes longer to send a request's headers, or then its body.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    metavar="N",
    envvar="XTOK_SERVER_WORKERS",
    show_envvar=True,
    help="Serve from N processes sharing the address and the data (one per CPU core scales).",
)
@click.pass_context
def server(
    ctx: click.Context,
    data: Path | None,
    master_key_file: Path | None,
    listen: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    dev: bool,
    min_duration: int | None,
    read_timeout: float,
    workers: int,
) -> None:
    """Run the local AWS-compatible endpoint (STS, Secrets Manager, IAM).

    Unlike moto it enforces what makes a token explode: SigV4 signatures, session expiry,
    policies and session policies, trust policies, MFA, revocation.
    """
    if ctx.invoked_subcommand is not None:
        return
    from xtok.server.bootstrap import bind, is_loopback, parse_listen, serve
    from xtok.server.workers import until_sigterm

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if min_duration is not None and not dev:
        raise UsageError("--min-duration is only allowed with --dev")
    if min_duration is not None and not 1 <= min_duration <= 900:
        raise UsageError("--min-duration must be 1-900 seconds")
    host, port = parse_listen(listen)
    if not is_loopback(host) and tls_cert is None:
        warn(
            f"LISTENING ON {host} WITHOUT TLS: credentials and secrets cross the network in "
            "clear text; use --tls-cert/--tls-key or a loopback address"
        )
    if dev:
        _serve_dev(
            host,
            port,
            tls_cert,
            tls_key,
            min_duration or 900,
            data,
            master_key_file,
            dict(read_timeout=read_timeout, workers=workers),
        )
        return
    endpoint = _open_endpoint(data, master_key_file)
    sock = bind(host, port)
    scheme = "https" if tls_cert else "http"
    note(f"serving {endpoint.db.path.parent} on {scheme}://{host}:{sock.getsockname()[1]}")
    with until_sigterm():
        serve(
            endpoint,
            sock,
            tls_cert=tls_cert,
            tls_key=tls_key,
            read_timeout=read_timeout,
            workers=workers,
        )


def _serve_dev(
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    min_duration: int,
    data: Path | None,
    key_file: Path | None,
    serving: dict[str, Any],
) -> None:
    """A fresh endpoint with an admin: throw-away data and an in-memory key unless --data and
    --master-key-file name where to keep them (e.g. for `xtok audit` afterwards)."""
    import shutil
    import tempfile

    from xtok.server.app import Endpoint
    from xtok.server.bootstrap import bind, create_admin, serve
    from xtok.server.crypto import new_key
    from xtok.server.workers import until_sigterm

    with until_sigterm():
        directory = data or Path(tempfile.mkdtemp(prefix="xtok-dev-"))
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            master = _master_key(key_file) if key_file else new_key()
            endpoint = Endpoint(directory, master, min_duration=min_duration)
            key = create_admin(endpoint)
            sock = bind(host, port)
            scheme = "https" if tls_cert else "http"
            url = f"{scheme}://{host}:{sock.getsockname()[1]}"
            click.echo(_exports(url, key, endpoint.settings.region), nl=True)
            sys.stdout.flush()
            note(f"dev endpoint on {url} (throw-away data; sessions from {min_duration} s)")
            from xtok.relay.app import create, dev_config

            relay_config = dev_config(url, endpoint.settings.account, os.environ)
            note(f"dev relay on {url}/relay")
            serve(
                endpoint,
                sock,
                tls_cert=tls_cert,
                tls_key=tls_key,
                relay=lambda: create(relay_config, directory / "relay.db"),
                **serving,
            )
        finally:
            if data is None:
                shutil.rmtree(directory, ignore_errors=True)


@server.command("init")
@data_option
@key_file_option
@click.option(
    "--account",
    default="123456789012",
    show_default=True,
    metavar="ID",
    help="The account id this endpoint answers as.",
)
@click.option(
    "--region",
    default="us-east-1",
    show_default=True,
    metavar="REGION",
    help="The region in secret ARNs.",
)
def server_init(data: Path | None, master_key_file: Path | None, account: str, region: str) -> None:
    """Create the data directory, the master key (0600) and the admin user.

    The admin's access key is printed once, as `export` lines for a shell.
    """
    from xtok.server.app import Endpoint
    from xtok.server.bootstrap import create_admin
    from xtok.server.crypto import MASTER_KEY_ENV, encode_key, new_key, write_private

    if not re.fullmatch(r"\d{12}", account):
        raise UsageError(f"--account {account!r} is not 12 digits")
    directory = data or _default_data()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if master_key_file is None and os.environ.get(MASTER_KEY_ENV):
        key = _master_key(None)
    else:
        path = master_key_file or _default_key_file()
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(path, encode_key(new_key()) + "\n")
            note(f"created master key {path} (0600): keep it apart from the data directory")
        key = _master_key(path)
    endpoint = Endpoint(directory, key, account=account, region=region)
    admin = create_admin(endpoint)
    note(f"initialised {directory}; the admin key below is shown only once")
    click.echo(_exports(f"http://{DEFAULT_LISTEN}", admin, region))


@cli.command("audit")
@data_option
@key_file_option
@click.option("--verify", is_flag=True, help="Check the hash chain; exit non-zero if broken.")
@json_option
def audit_cmd(data: Path | None, master_key_file: Path | None, verify: bool, as_json: bool) -> int:
    """Print the local endpoint's audit log (who did what, allowed or not; never a value)."""
    endpoint = _open_endpoint(data, master_key_file)
    if verify:
        problems = endpoint.audit.verify()
        for problem in problems:
            click.echo(f"xtok: audit: {problem}", err=True)
        if problems:
            raise AuditBroken(
                f"the audit log is not intact ({len(problems)} problem(s))",
                tip="restore the database from a backup and investigate",
            )
        note("audit log intact")
        return 0
    rows = [{"seq": seq, **rec.__dict__} for seq, rec in endpoint.audit.rows()]
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        # Every field may hold what a caller sent: escaped, a row stays one line of its own.
        field = {k: shown(v) if v is not None else "" for k, v in row.items()}
        who = field["principal"] or "-"
        if field["source_identity"]:
            who += f" (by {field['source_identity']})"
        outcome = field["decision"] + (f" {field['error']}" if field["error"] else "")
        click.echo(
            f"{row['seq']:>6} {field['time']} {outcome:<24} {field['action']:<34} "
            f"{field['resource'] or '-'} {who}"
        )
    return 0


class AuditBroken(Error):
    exit_code = ExitCode.AUDIT_BROKEN


@cli.command("demo")
def demo_cmd() -> int:
    """Run the whole flow, narrated, against a throw-away local endpoint.

    Stores a secret, sets up the role, mints a scoped token with MFA, runs a masked pipeline
    step, shows a secret outside the scope denied, a token exploding, a revocation and the
    audit trail.
    """
    from xtok import demo

    return demo.run(click.echo)
