"""`xtok run`: fetch the secrets with a token, then run the command, masked."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from xtok.cli.app import (
    TOKEN_ENV_DEFAULT,
    aws_options,
    cli,
    duration_option,
    parse_refs,
    read_stdin,
    role_option,
    secret_spec_options,
    state_dir_option,
    stdin_is_tty,
    utcnow,
    warn,
)
from xtok.duration import parse_duration
from xtok.errors import EXIT_CODE_MEANINGS, ExitCode, UsageError


def _exit_code_table() -> str:
    rows = "\n".join(f"  {int(code)}  {EXIT_CODE_MEANINGS[code]}" for code in ExitCode)
    return (
        "Exit status: the command's own; 128+N if it was killed by signal N.\n"
        "xtok's own failures (the command did not run):\n\n\b\n" + rows
    )


@cli.command(
    "run",
    context_settings={"allow_interspersed_args": False},
    epilog=_exit_code_table(),
    short_help="Fetch secrets with a token, then run COMMAND, masked.",
)
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Read the token from stdin (hidden prompt on a "
    "terminal; the command then gets an empty stdin).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    envvar="XTOK_TOKEN_FILE",
    show_envvar=True,
    help="Read the token from this file.",
)
@click.option(
    "--token-env",
    metavar="VAR",
    help="Read the token from environment variable VAR "
    f"(default: {TOKEN_ENV_DEFAULT} when no other source is given).",
)
@secret_spec_options
@click.option(
    "--sealed",
    is_flag=True,
    help="The token is sealed (from `xtok approve`): open it with this run's request key "
    "(deleted on first use); the secrets are the request's.",
)
@state_dir_option
@click.option(
    "--ticket-env",
    metavar="VAR",
    default="XTOK_TICKET",
    show_default=True,
    help="With --sealed: the variable that holds this run's ticket (line 2 of `xtok request`).",
)
@click.option(
    "--relay",
    "relay_url",
    metavar="URL",
    help="Request through this relay, wait for the approval and run, all in this process "
    "(the one-time key never touches disk).",
)
@duration_option("With --relay: the lifetime to request.")
@role_option("With --relay: the role the approver should assume.")
@click.option(
    "--min-ttl",
    metavar="DURATION",
    default="60s",
    show_default=True,
    envvar="XTOK_MIN_TTL",
    show_envvar=True,
    help="Refuse a token with less life left than this.",
)
@aws_options()
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(
    token_stdin: bool,
    token_file: str | None,
    token_env: str | None,
    secret_specs: tuple[str, ...],
    secret_file_specs: tuple[str, ...],
    sealed: bool,
    state_dir: Path | None,
    ticket_env: str,
    relay_url: str | None,
    duration: str,
    role_arn: str | None,
    min_ttl: str,
    command: tuple[str, ...],
    aws: Any,
) -> int:
    """Fetch secrets with a token, then run COMMAND with them; output is masked.

    \b
    xtok run --token-env XTOK_TOKEN --secret DB_PASS=prod/db -- ./deploy.sh

    \b
    xtok run --sealed --token-file approval.txt -- ./deploy.sh   # ticket in $XTOK_TICKET

    \b
    xtok run --relay https://relay.example --secret DB_PASS=prod/db -- ./deploy.sh

    The command gets the secrets, never the token or any AWS credential.
    Tokens are never accepted on the command line.
    """
    from xtok.aws.fetch import fetch
    from xtok.run import runner
    from xtok.run.isolation import make_undumpable
    from xtok.tokens import token as tokens

    # Before the token is read: nothing of this process is readable to the command it starts.
    make_undumpable()
    runner.check_outputs()  # before a sealed token is spent
    _refuse_token_as_command(command)
    refs = parse_refs(secret_specs, secret_file_specs)
    if relay_url:
        if sealed or token_stdin or token_file or token_env:
            raise UsageError("--relay brings its own token", tip="drop --sealed/--token-*")
        return _run_via_relay(relay_url, refs, duration, role_arn, min_ttl, command, aws)
    if sealed and refs:
        raise UsageError(
            "--sealed takes its secrets from the request",
            tip="drop --secret/--secret-file; they were fixed by `xtok request`",
        )
    if not refs and not sealed:
        raise UsageError("no secret requested", tip="add --secret ENV=NAME")
    ttl = parse_duration(min_ttl)
    text, var = _read_token(token_stdin, token_file, token_env)
    if sealed:
        from xtok.approval import pending, seal

        request, creds = seal.open_sealed(
            seal.SealedToken.parse(text),
            _read_ticket(ticket_env),
            state_dir or pending.default_state_dir(),
        )
        refs = list(request.secrets)
    else:
        creds = tokens.parse(text)
    creds.check_fresh(utcnow(), ttl)
    if creds.expiration is None:
        warn("this token format carries no expiry: AWS alone decides whether it still works")
    values = fetch(refs, creds, aws)
    return runner.run(
        command,
        values,
        drop_env=[v for v in (var, ticket_env) if v],
        stdin_devnull=token_stdin and not stdin_is_tty(),
    )


def _run_via_relay(
    relay_url: str,
    refs: list[Any],
    duration: str,
    role_arn: str | None,
    min_ttl: str,
    command: tuple[str, ...],
    aws: Any,
) -> int:
    from xtok.aws.fetch import fetch
    from xtok.aws.mint import MAX_ROLE_DURATION, MIN_DURATION
    from xtok.cli.relay_flows import run_via_relay
    from xtok.run import runner

    if not refs:
        raise UsageError("no secret requested", tip="add --secret ENV=NAME")
    seconds = parse_duration(duration)
    if not MIN_DURATION <= seconds <= MAX_ROLE_DURATION:
        raise UsageError(f"--duration {duration} is outside 15m00s-12h00m00s")
    _, creds = run_via_relay(relay_url, refs, seconds, role_arn, os.environ)
    creds.check_fresh(utcnow(), parse_duration(min_ttl))
    # The relay key and the CI's ID token are XTOK_* variables: the runner never passes them on.
    return runner.run(command, fetch(refs, creds, aws))


_TOKEN_LIKE = re.compile(r"^(xtok[rs]?\d+\.|\{)")


def _refuse_token_as_command(command: Sequence[str]) -> None:
    """A token (even a mangled one) in the command's place would be echoed as "not found"."""
    from xtok.tokens.armor import compact

    word = compact(command[0])
    if not (_TOKEN_LIKE.match(word) or (word.count(":") == 2 and len(word) > 40)):
        return
    raise UsageError(
        "the command looks like a token: tokens are never taken from the command line",
        tip="use --token-stdin, --token-file or --token-env",
    )


def _read_token(stdin: bool, path: str | None, env: str | None) -> tuple[str, str | None]:
    """The token text and, when it came from the environment, the variable's name."""
    chosen = sum((stdin, path is not None, env is not None))
    if chosen > 1:
        raise UsageError("give only one of --token-stdin, --token-file, --token-env")
    if stdin:
        return read_stdin(), None
    if path is not None:
        from xtok.regular_file import read_regular

        tip = "pipe the token with --token-stdin instead"
        try:
            return read_regular(path, what="token file", tip=tip).decode(), None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read token file {path}: {exc}") from None
    var = env or TOKEN_ENV_DEFAULT
    value = os.environ.get(var)
    if not value:
        if env is None:
            raise UsageError(
                "no token given",
                tip=f"use --token-stdin, --token-file F, --token-env VAR or set "
                f"{TOKEN_ENV_DEFAULT}",
            )
        raise UsageError(f"environment variable {var} is not set or empty")
    return value, var


def _read_ticket(var: str) -> Any:
    from xtok.approval.pending import Ticket

    text = os.environ.get(var)
    if not text:
        raise UsageError(
            f"no request ticket in {var}: --sealed opens only the request this run made",
            tip=f"put the second line `xtok request` printed in {var}",
        )
    return Ticket.parse(text)
