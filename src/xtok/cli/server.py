"""The local endpoint: `xtok server`, `xtok server init`, `xtok audit`, `xtok demo`."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from xtok.cli.app import (
    check_tls,
    cli,
    json_option,
    note,
    print_json,
    tls_options,
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
    help="File holding the master key (default: ~/.config/xtok/master.key). Instead of a file, "
    "XTOK_SERVER_MASTER_KEY may hold the key itself (base64, as in the file; not a path).",
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


@cli.group(
    "server", invoke_without_command=True, short_help="Run the local AWS-compatible endpoint."
)
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
@tls_options
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
    from xtok.loopback import is_loopback
    from xtok.server.bootstrap import bind, parse_listen, serve
    from xtok.server.workers import stop_signals_held

    check_tls(tls_cert, tls_key)
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
    with stop_signals_held():
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
    from xtok.server.crypto import (
        MASTER_KEY_ENV,
        encode_key,
        load_master_key,
        new_key,
        write_private,
    )
    from xtok.server.workers import stop_signals_held

    keep_key = key_file is not None or bool(os.environ.get(MASTER_KEY_ENV))
    if data is not None and not keep_key:
        raise UsageError(
            "--dev --data keeps the data, but its master key would be thrown away",
            tip="add --master-key-file FILE (created when missing) to read it later, "
            "e.g. with `xtok audit`",
        )
    if key_file is not None and not key_file.exists():
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(key_file, encode_key(new_key()) + "\n")
    # SIGTERM ends the server like Ctrl-C, so the `finally` below removes the throw-away data.
    with stop_signals_held():
        directory = data or Path(tempfile.mkdtemp(prefix="xtok-dev-"))
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            master = load_master_key(key_file) if keep_key else new_key()
            endpoint = Endpoint(directory, master, min_duration=min_duration)
            key = create_admin(endpoint)
            sock = bind(host, port)
            scheme = "https" if tls_cert else "http"
            url = f"{scheme}://{host}:{sock.getsockname()[1]}"
            click.echo(_exports(url, key, endpoint.settings.region), nl=True)
            sys.stdout.flush()
            kept = f"data kept in {directory}" if data else "throw-away data"
            note(f"dev endpoint on {url} ({kept}; sessions from {min_duration} s)")
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


@cli.command("audit", short_help="Print the local endpoint's audit log.")
@data_option
@key_file_option
@click.option("--verify", is_flag=True, help="Check the hash chain; exit non-zero if broken.")
@click.option(
    "--action",
    "actions",
    multiple=True,
    metavar="PATTERN",
    help="Only rows of these actions, e.g. sts:AssumeRole or 'secretsmanager:*' (repeatable).",
)
@json_option
def audit_cmd(
    data: Path | None,
    master_key_file: Path | None,
    verify: bool,
    actions: tuple[str, ...],
    as_json: bool,
) -> int:
    """Print the local endpoint's audit log (who did what, allowed or not; never a value).

    For a `xtok server --dev` endpoint, start it with --data and --master-key-file to keep them.
    """
    from fnmatch import fnmatchcase

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
    rows = [
        {"seq": seq, **rec.__dict__}
        for seq, rec in endpoint.audit.rows()
        if not actions or any(fnmatchcase(rec.action, p) for p in actions)
    ]
    if as_json:
        print_json(rows)
    else:
        _print_table(rows, endpoint.settings.account)
    return 0


AUDIT_COLUMNS = ("#", "time (UTC)", "outcome", "action", "principal", "approved by")


def _print_table(rows: list[dict[str, Any]], account: str) -> None:
    """Aligned columns under a header; ARNs of the endpoint's own account shortened (--json
    has them whole); the resource last, as it is the longest."""
    note(f"account {account}; its ARNs are shortened (`--json` shows them whole)")
    own = re.compile(rf"^arn:aws:[a-z-]+:[a-z0-9-]*:{account}:")
    table = [[*AUDIT_COLUMNS, "resource"]]
    for row in rows:
        table.append(
            [
                str(row["seq"]),
                row["time"][:19].replace("T", " "),
                row["decision"] + (f" {row['error']}" if row["error"] else ""),
                row["action"],
                own.sub("", row["principal"] or "(unauthenticated)"),
                _approver(row),
                own.sub("", row["resource"] or "-"),
            ]
        )
    table = [[shown(cell) for cell in line] for line in table]  # caller-given text
    widths = [max(len(line[i]) for line in table) for i in range(len(AUDIT_COLUMNS))]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        click.echo("  ".join([*cells, line[-1]]).rstrip())


def _approver(row: dict[str, Any]) -> str:
    """The session's SourceIdentity (xtok sets it to the approver); a session without one says
    so, since then nothing names the person behind it."""
    if row["source_identity"]:
        return str(row["source_identity"])
    principal = row["principal"] or ""
    return "(no SourceIdentity)" if ":assumed-role/" in principal or row["session_name"] else "-"


class AuditBroken(Error):
    exit_code = ExitCode.AUDIT_BROKEN


@cli.command("demo", short_help="Run the whole flow, narrated, on a throw-away endpoint.")
def demo_cmd() -> int:
    """Run the whole flow, narrated, against a throw-away local endpoint.

    Stores a secret, sets up the role, mints a scoped token with MFA, runs a masked pipeline
    step, shows a secret outside the scope denied, a token exploding, a sealed token opened
    once in its own run only, a revocation and the audit trail.
    """
    from xtok import demo

    return demo.run(click.echo)
