"""Tokens: `xtok token`, `xtok inspect`, and sealed ones: `xtok request`, `xtok approve`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from xtok.cli.app import (
    TOKEN_ENV_DEFAULT,
    ask_mfa_code,
    aws_options,
    cli,
    clock,
    confirm,
    duration_option,
    emit_token,
    json_option,
    mfa_options,
    note,
    parse_refs,
    prefix_option,
    print_json,
    read_stdin,
    relay_option,
    role_option,
    secret_spec_options,
    secrets_option,
    stamp,
    state_dir_option,
    stdin_is_tty,
    target_of,
    utcnow,
    warn,
)
from xtok.display import field_lines, shown, terminal_width
from xtok.duration import format_duration, parse_duration
from xtok.errors import Error, Interrupted, UsageError
from xtok.tokens.armor import compact


@cli.command("token", short_help="Mint a short-lived token with your AWS identity and MFA.")
@role_option("AssumeRole this role (recommended); without it: GetSessionToken.")
@secrets_option
@prefix_option
@duration_option()
@mfa_options
@click.option(
    "--for",
    "label",
    metavar="LABEL",
    help="What the token is for (job, build): session name and tag.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["xtok", "legacy", "json"]),
    default="xtok",
    show_default=True,
    help="legacy = SessionToken:AccessKeyId:SecretAccessKey.",
)
@click.option("--copy", is_flag=True, help="Copy the token to the clipboard instead of printing.")
@aws_options()
def token_cmd(
    role_arn: str | None,
    secrets: tuple[str, ...],
    prefix: str | None,
    duration: str,
    mfa_serial: str | None,
    mfa_code: str | None,
    label: str | None,
    fmt: str,
    copy: bool,
    aws: Any,
) -> None:
    """Mint a short-lived token with your own AWS identity and print it on one line."""
    from xtok.aws.mint import MintRequest, mint
    from xtok.aws.session import custom_endpoint
    from xtok.tokens import token as tokens

    target = target_of(secrets, prefix) if (secrets or prefix) else None
    req = MintRequest(
        duration=parse_duration(duration),
        custom_endpoint=custom_endpoint(aws),
        role_arn=role_arn,
        target=target,
        label=label,
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
    )
    if role_arn is None:
        warn(
            "no --role: GetSessionToken carries ALL of your powers for its lifetime; "
            "prefer --role with --secret"
        )
    creds = mint(aws, req, utcnow(), ask_mfa_code)
    text = {"xtok": tokens.encode, "legacy": tokens.encode_legacy, "json": tokens.encode_json}[fmt](
        creds
    )
    emit_token(text, creds, copy=copy)


@cli.command("inspect")
@click.argument("token_text", metavar="[TOKEN | -]", required=False)
@json_option
def inspect_cmd(token_text: str | None, as_json: bool) -> None:
    """Show what a token is: kind, key id (last 4), expiry, scope. Never its secret parts.

    Reads stdin when TOKEN is -. With no TOKEN: stdin when it is not a terminal and not
    empty, else $XTOK_TOKEN, else (on a terminal) a hidden prompt.
    """
    from xtok.tokens import token as tokens

    env = os.environ.get(TOKEN_ENV_DEFAULT, "")
    if token_text == "-":  # noqa: S105 - "-" means stdin
        text = read_stdin()
    elif token_text is None:
        text = "" if stdin_is_tty() else read_stdin()
        text = text if text.strip() else env
        if not text.strip() and stdin_is_tty():
            text = read_stdin()
        if not text.strip():
            raise UsageError(
                f"no token to inspect: none on stdin and ${TOKEN_ENV_DEFAULT} is not set",
                tip=f"pipe it in (`xtok inspect - < FILE`) or set ${TOKEN_ENV_DEFAULT}",
            )
    else:
        warn("a token on the command line lands in shell history; prefer `xtok inspect -`")
        text = token_text
    kind = compact(text)[:5]
    if kind in ("xtokr", "xtoks"):
        _inspect_sealing(text, kind, as_json)
        return
    creds = tokens.parse(text)
    now = utcnow()
    left = creds.seconds_left(now)
    info: dict[str, Any] = {
        "format": creds.source,
        "kind": creds.kind,
        "key_id": creds.key_hint,
        "session_name": creds.session_name,
        "scope": creds.scope.to_json() if creds.scope else None,
        "region": creds.region,
        "issued": creds.issued.isoformat() if creds.issued else None,
        "expires": creds.expiration.isoformat() if creds.expiration else None,
        "seconds_left": None if left is None else max(0, int(left)),
        "expired": left is not None and left <= 0,
    }
    if as_json:
        print_json(info)
        return
    if left is None:
        expiry = "unknown (this format carries no expiry; AWS decides)"
    elif left <= 0:
        expiry = f"{stamp(creds.expiration)} (EXPIRED {format_duration(left)} ago)"  # type: ignore[arg-type]
    else:
        expiry = f"{stamp(creds.expiration)} (in {format_duration(left)})"  # type: ignore[arg-type]
    scope = creds.scope.describe() if creds.scope else "not narrowed by xtok"
    lines = [
        ("format", creds.source),
        ("kind", creds.kind),
        ("key id", creds.key_hint),
        ("session", creds.session_name or "-"),
        ("scope", scope),
        ("region", creds.region or "-"),
        ("issued", stamp(creds.issued) if creds.issued else "-"),
        ("expires", expiry),
    ]
    for key, value in lines:
        for line in field_lines(f"{key + ':':<9}", value, terminal_width(1)):
            click.echo(line)


def _inspect_sealing(text: str, kind: str, as_json: bool) -> None:
    """What a request code or a sealed token shows without the run's private key."""
    from xtok.approval.request import RequestCode
    from xtok.approval.seal import SealedToken

    info: dict[str, Any]
    if kind == "xtokr":
        request = RequestCode.parse(text)
        info = {
            "format": "request-code",
            "request": request.id,
            "run": request.identity.to_json(),
            "secrets": [
                f"{r.env}={r.label}" + (" (file)" if r.as_file else "") for r in request.secrets
            ],
            "duration": request.duration,
            "role": request.role,
            "key_fingerprint": request.fingerprint,
        }
    else:
        sealed = SealedToken.parse(text)
        info = {
            "format": "sealed-token",
            "request": sealed.request_id,
            "answers_digest": sealed.digest.hex()[:16],
            "contents": "sealed: only the requesting run can open it, once",
        }
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        text = ", ".join(value) if isinstance(value, list) else value
        if isinstance(value, dict):
            text = " ".join(f"{k}={v}" for k, v in value.items())
        if key == "duration":
            text = format_duration(int(value))
        for line in field_lines(f"{key + ':':<17}", text, terminal_width(1)):
            click.echo(line)


@cli.command("request", short_help="Ask for a sealed token (pipeline side).")
@secret_spec_options
@duration_option()
@role_option("The role the approver should assume (they may name another).")
@state_dir_option
@click.option(
    "--purge-after",
    metavar="DURATION",
    default="24h",
    show_default=True,
    help="How long the request may wait for its approval; its key is purged after.",
)
@click.option("--ci", "ci_kind", metavar="KIND", help="CI kind (default: detected).")
@click.option("--job", help="Job name (default: detected).")
@click.option("--build", help="Build number (default: detected).")
@click.option("--build-url", help="Build URL (default: detected).")
@click.option("--commit", help="Commit (default: detected).")
@relay_option("With --wait: post the request to this relay (with the CI's OIDC proof).")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait on the relay for the answer; print the sealed token (exit non-zero on denial).",
)
def request_cmd(
    secret_specs: tuple[str, ...],
    secret_file_specs: tuple[str, ...],
    duration: str,
    role_arn: str | None,
    state_dir: Path | None,
    purge_after: str,
    ci_kind: str | None,
    job: str | None,
    build: str | None,
    build_url: str | None,
    commit: str | None,
    relay_url: str | None,
    wait: bool,
) -> None:
    """Ask for a sealed token (pipeline side): print a request code and this run's ticket.

    \b
    Line 1: the request code, for the approver (`xtok approve CODE`).
    Line 2: the run's ticket: keep it in this run only and give it to
            `xtok run --sealed` in XTOK_TICKET. Never show or share it.

    The one-time private key stays in a private state directory, encrypted to the ticket:
    only this run can open the token that `xtok approve` seals for the code. The run's
    identity (CI, job, build, commit) is detected for Jenkins, GitHub Actions and GitLab CI.

    With --relay URL --wait it posts the request (proven by the CI's OIDC token where there
    is one) and prints, once approved, the sealed token instead of the code (the ticket stays
    line 2).
    """
    from xtok.approval import ci, pending, seal
    from xtok.aws.mint import MAX_ROLE_DURATION, MIN_DURATION
    from xtok.run.isolation import make_undumpable

    make_undumpable()  # the ticket and the private key pass through this process

    refs = parse_refs(secret_specs, secret_file_specs)
    if not refs:
        raise UsageError("no secret requested", tip="add --secret ENV=NAME")
    seconds = parse_duration(duration)
    if not MIN_DURATION <= seconds <= MAX_ROLE_DURATION:
        raise UsageError(f"--duration {format_duration(seconds)} is outside 15m00s-12h00m00s")
    identity = ci.identify(
        os.environ, ci=ci_kind, job=job, build=build, url=build_url, commit=commit
    )
    if wait:
        from xtok.approval.relay_client import check_url

        relay_url = check_url(relay_url)  # before a key is made for nothing
    directory = state_dir or pending.default_state_dir()
    request, ticket = seal.new_request(
        identity,
        tuple(refs),
        seconds,
        role_arn,
        directory,
        pending.check_wait(parse_duration(purge_after)),
    )
    if wait and relay_url:
        from xtok.cli.relay_flows import post_and_wait

        try:
            sealed = post_and_wait(relay_url, request, os.environ)
        except BaseException:
            pending.discard(ticket, directory)  # never answered: its key is of no use
            raise
        click.echo(sealed)
        click.echo(ticket.encode())
        return
    click.echo(request.encode())
    click.echo(ticket.encode())
    note(
        f"request {request.id} (key {request.fingerprint}) for {shown(identity.label)}: ask an "
        "approver to run `xtok approve <code>` with the first line; keep the second (the "
        "run's ticket) for `xtok run --sealed`"
    )


@cli.command("approve", short_help="Approve a run's request: mint a token sealed to that run.")
@click.argument("code", metavar="[REQUEST_CODE]", required=False)
@click.option(
    "--relay",
    "relay_url",
    metavar="URL",
    help="Pick the request from this relay's inbox and answer there (default: $XTOK_RELAY_URL "
    "when no REQUEST_CODE is given).",
)
@click.option("--pick", metavar="ID", help="With --relay: the request to review (else: a list).")
@click.option("--deny", "deny_reason", metavar="REASON", help="With --relay: deny, with a reason.")
@role_option("The role to assume (default: the one the request names).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripted use).")
@click.option("--copy", is_flag=True, help="Copy the sealed token to the clipboard.")
@click.option(
    "--jenkins",
    "jenkins_url",
    metavar="BUILD_URL",
    help="Submit the sealed token to this build's pending input (Jenkins REST API).",
)
@click.option(
    "--insecure-http",
    is_flag=True,
    help="Allow --jenkins over plain http:// to a host that is not loopback.",
)
@mfa_options
@aws_options()
def approve_cmd(
    code: str | None,
    relay_url: str | None,
    pick: str | None,
    deny_reason: str | None,
    role_arn: str | None,
    yes: bool,
    copy: bool,
    jenkins_url: str | None,
    insecure_http: bool,
    mfa_serial: str | None,
    mfa_code: str | None,
    aws: Any,
) -> None:
    """Approve a run's request: mint a scoped token and seal it to that run (approver side).

    Shows what is being approved and asks to confirm. Mints with your own identity an
    AssumeRole session whose session policy names exactly the requested secrets, and prints
    the sealed token (safe to paste anywhere: only the requesting run can open it, once).
    REQUEST_CODE may be - to read it from stdin. Without it, the request comes from the relay
    (--relay or $XTOK_RELAY_URL): log in with your AWS identity, list, pick, review, answer.
    A CI's OIDC proof is verified here, never trusted from the relay.
    """
    from xtok.approval import review, seal
    from xtok.approval.request import RequestCode
    from xtok.aws.mint import mint
    from xtok.cli import relay_flows

    if jenkins_url:  # before anything is minted
        from xtok.approval.jenkins import check_build_url

        check_build_url(jenkins_url, insecure_http=insecure_http)
    reviewed = None
    if code is None:
        reviewed = relay_flows.pick_from_inbox(
            relay_url or os.environ.get("XTOK_RELAY_URL") or "", aws, pick
        )
        if reviewed is None:
            return
        if deny_reason is not None:
            relay_flows.deny(reviewed, deny_reason)
            return
        code = str(reviewed.entry.get("request", ""))
    elif relay_url or pick or deny_reason:
        raise UsageError("--relay, --pick and --deny replace REQUEST_CODE", tip="drop one")
    from_stdin = reviewed is None and code == "-"  # a relay's "-" is no request, not stdin
    request = RequestCode.parse(read_stdin() if from_stdin else code)
    role = role_arn or request.role
    if role is None:
        raise UsageError("the request names no role", tip="pass --role ARN")
    proof = reviewed.entry.get("proof") if reviewed else None
    history = review.History()
    changes = review.differences(request, role, bool(proof), history.last(request))
    click.echo("xtok: approve this run?", err=True)
    width = terminal_width()
    for key, value in review.rows(request, role):
        for line in field_lines(f"  {key + ':':<10}", value, width):
            click.echo(line, err=True)
    # The colour is xtok's, the claims are not: they are escaped and wrapped like any field.
    for key, text, colour in relay_flows.proof_lines(proof, request):
        for line in field_lines(f"  {key + ':':<10}", text, width):
            click.echo(click.style(line, fg=colour) if colour else line, err=True)
    for change in changes:
        for line in field_lines(f"  {'differs:':<10}", change, width):
            click.echo(click.style(line, fg="yellow"), err=True)
    if not yes:
        if not stdin_is_tty() or from_stdin:
            raise UsageError("confirmation needed", tip="run on a terminal, or pass --yes")
        if not confirm("Approve?"):
            if reviewed is not None:
                relay_flows.offer_denial(reviewed)
            raise Interrupted("not approved: nothing was minted")
    req = review.mint_request(request, role, mfa_serial, mfa_code)
    creds = mint(aws, req, utcnow(), ask_mfa_code)
    text = seal.seal(request, creds).encode()
    if reviewed is not None:
        reviewed.relay.approve(request.id, text)
        note(f"sealed token posted to {reviewed.relay.url} for request {request.id}")
    elif jenkins_url:
        from xtok.approval.jenkins import submit

        try:
            input_id = submit(jenkins_url, text, insecure_http=insecure_http)
        except Error:
            # The sealed token is safe to show: it can still be pasted into the input by hand.
            click.echo(text)
            note("could not submit to Jenkins: paste the sealed token above into the input")
            raise
        note(f"sealed token submitted to {jenkins_url} (input {input_id})")
        if creds.expiration is not None:
            note(f"explodes at {clock(creds.expiration)}")
    else:
        emit_token(text, creds, copy=copy, what="sealed token")
    history.record(request, role, proven=bool(proof))  # once delivered (or shown)
