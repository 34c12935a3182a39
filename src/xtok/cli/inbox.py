"""`xtok inbox`: the relay's inbox in your browser, served by your own xtok on loopback."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from xtok.cli.app import aws_options, cli, note, relay_option


@cli.command("inbox")
@relay_option("The relay whose inbox to show.")
@click.option(
    "--no-browser",
    is_flag=True,
    help="Do not open a browser; print the page's link (it holds the page's secret).",
)
@click.option(
    "--mfa-serial",
    envvar="XTOK_MFA_SERIAL",
    show_envvar=True,
    help="MFA device ARN (default: the profile's mfa_serial); the page then asks for a code.",
)
@aws_options()
def inbox_cmd(relay_url: str | None, no_browser: bool, mfa_serial: str | None, aws: Any) -> None:
    """Review and answer the relay's requests in your browser.

    Serves a page on 127.0.0.1 (a random port; a secret made for this run in its link, nothing
    answers without it), logged in to the relay with your AWS identity. Approve mints with
    your identity (and MFA) in this process, seals the token to the run and posts it to the
    relay: the browser never holds AWS credentials or an unsealed token. Stop with Ctrl-C.
    """
    from xtok import display
    from xtok.approval import oidc
    from xtok.approval.inbox.app import Inbox, create
    from xtok.approval.relay_client import check_url
    from xtok.aws.mint import profile_mfa_serial
    from xtok.aws.session import session
    from xtok.server.bootstrap import bind, serve_app

    url = check_url(relay_url)
    serial = mfa_serial or profile_mfa_serial(session(aws))
    inbox = Inbox(url, aws, serial, oidc.Trust.load())
    note(f"logged in to {url} as {display.shown(inbox.login())}")
    sock = bind("127.0.0.1", 0)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    secret = secrets.token_urlsafe(32)
    link = f"{origin}/{secret}/"
    app = create(inbox, secret, secrets.token_urlsafe(32), origin, time.time)
    if no_browser:
        note(f"inbox on {link}")
    else:
        _open(link)
    note("stop with Ctrl-C")
    serve_app(app, sock)


def _open(link: str) -> None:
    """Open the link through a 0600 redirect file: a URL on the browser's command line would
    show the page's secret to every local user (ps)."""
    import webbrowser

    directory = Path(tempfile.mkdtemp(prefix="xtok-inbox-"))  # 0700
    page = directory / "open.html"
    fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f'<!doctype html><meta http-equiv="refresh" content="0;url={link}">\n')
    if webbrowser.open(page.as_uri()):
        note(f"inbox opened in your browser (its link is in {page}, readable by you only)")
    else:
        note(f"no browser found: open {page} (readable by you only), or use --no-browser")
