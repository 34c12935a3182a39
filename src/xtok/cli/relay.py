"""`xtok relay`: serve the relay (the run and approver sides are in xtok.cli.relay_flows)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from xtok.cli.app import check_tls, cli, note, tls_options, warn
from xtok.errors import UsageError

DEFAULT_LISTEN = "127.0.0.1:4577"


@cli.command("relay", short_help="Serve the relay between waiting CI runs and approvers.")
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    envvar="XTOK_RELAY_LISTEN",
    show_envvar=True,
    help="Address to listen on (port 0: any free port).",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="The URL clients use (approvers' proofs must name it; default: from --listen).",
)
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="XTOK_RELAY_DATA",
    show_envvar=True,
    help="Directory of the relay's SQLite file (default: ~/.local/share/xtok/relay).",
)
@click.option(
    "--approver",
    "approvers",
    multiple=True,
    required=True,
    metavar="ARN_PATTERN",
    help="IAM ARN (or pattern with * and ?) allowed to answer (repeatable).",
)
@click.option(
    "--sts-url",
    default="https://sts.amazonaws.com/",
    show_default=True,
    metavar="URL",
    help="STS endpoint that checks approvers' GetCallerIdentity proofs.",
)
@click.option(
    "--trust-issuer",
    "issuers",
    multiple=True,
    metavar="URL",
    help="OIDC issuer trusted for runs' proofs, besides GitHub's and gitlab.com (repeatable).",
)
@click.option(
    "--audience",
    default="xtok",
    show_default=True,
    help="Fixed audience of GitLab / Jenkins ID tokens.",
)
@click.option(
    "--run-keys",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File of `NAME SHA256HEX` lines: relay keys for CIs without OIDC (unproven requests).",
)
@click.option(
    "--webhooks",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="XTOK_RELAY_WEBHOOKS",
    show_envvar=True,
    help="Private (0600) TOML file of webhooks told of each new request (Slack, signed JSON).",
)
@click.option("--keep", default="1h", show_default=True, help="Keep answered requests this long.")
@click.option(
    "--max-wait",
    default="12h",
    show_default=True,
    help="A request expires after its token's lifetime or this, whichever is shorter.",
)
@click.option(
    "--posts-per-minute",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="Requests one poster (CI identity or relay key) may post per minute.",
)
@click.option(
    "--logins-per-minute",
    type=click.IntRange(1, 10_000),
    default=30,
    show_default=True,
    help="Approver logins per minute from one client address.",
)
@tls_options
def relay_cmd(
    listen: str,
    public_url: str | None,
    data: Path | None,
    approvers: tuple[str, ...],
    sts_url: str,
    issuers: tuple[str, ...],
    audience: str,
    run_keys: Path | None,
    webhooks: Path | None,
    keep: str,
    max_wait: str,
    posts_per_minute: int,
    logins_per_minute: int,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Serve the relay: a mailbox between waiting CI runs and their approvers.

    It learns nothing usable: request codes are public, sealed tokens open only for their
    run, approvers verify runs' OIDC proofs themselves. At worst it delays or drops.
    See docs/relay-api.md.
    """
    from xtok.approval import oidc
    from xtok.duration import parse_duration
    from xtok.loopback import is_loopback
    from xtok.relay import notify
    from xtok.relay.app import RelayConfig, create
    from xtok.server.bootstrap import bind, parse_listen, serve_app

    check_tls(tls_cert, tls_key)
    host, port = parse_listen(listen)
    if not is_loopback(host) and public_url is None:
        raise UsageError(
            f"--public-url is needed when listening on {host}",
            tip="the URL approvers use: their proofs must name it, e.g. https://relay.example.com",
        )
    if not is_loopback(host) and tls_cert is None:
        warn(f"LISTENING ON {host} WITHOUT TLS: approver sessions cross the network in clear")
    directory = data or Path(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "xtok", "relay"
    )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock = bind(host, port)
    scheme = "https" if tls_cert else "http"
    url = public_url or f"{scheme}://{host}:{sock.getsockname()[1]}"
    config = RelayConfig(
        public_url=url.rstrip("/"),
        approvers=approvers,
        sts_url=sts_url,
        trust=oidc.Trust(
            issuers=(*oidc.DEFAULT_ISSUERS, *(i.rstrip("/") for i in issuers)), audience=audience
        ),
        run_keys=_read_run_keys(run_keys) if run_keys else {},
        posts_per_minute=posts_per_minute,
        logins_per_minute=logins_per_minute,
        max_wait=parse_duration(max_wait),
        notify=notify.load(webhooks) if webhooks else notify.NotifyConfig(),
    )
    app = create(config, directory / "relay.db", keep=parse_duration(keep))
    note(f"relay on {url} (data {directory})")
    serve_app(app, sock, tls_cert=tls_cert, tls_key=tls_key)


def _read_run_keys(path: Path) -> dict[str, str]:
    keys = {}
    from xtok.regular_file import read_regular

    try:
        text = read_regular(path, what="run keys file").decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the run keys file {path}: {type(exc).__name__}") from None
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2 or len(words[1]) != 64:
            raise UsageError(f"{path}:{number}: expected `NAME SHA256HEX`")
        keys[words[1].lower()] = words[0]
    return keys
