"""The relay sides of `xtok request --wait`, `xtok run --relay` (post, wait, open) and
`xtok approve --relay` (log in, list, pick, verify the proof, answer)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from xtok.cli.app import note, stdin_is_tty
from xtok.display import shown
from xtok.duration import format_duration
from xtok.errors import AccessDenied, Error, NetworkError, TokenExpired, UsageError

if TYPE_CHECKING:
    from xtok.approval.request import RequestCode
    from xtok.refs import SecretRef
    from xtok.tokens.token import Credentials

POLL = 50  # seconds per long poll: under common proxies' idle timeouts
RETRIES = 5  # consecutive network failures tolerated while waiting
REFRESH_MARGIN = 60  # seconds before a refreshable proof expires that a new one is posted


class NotApproved(AccessDenied):
    """The approver denied the request."""


def post_and_wait(relay_url: str, request: RequestCode, env: Mapping[str, str]) -> str:
    """Post `request` (with the CI's ID token when there is one), wait for its answer and
    return the sealed token; raise with the approver's reason on denial, or on expiry."""
    from xtok.approval import oidc
    from xtok.approval.relay_client import KEY_ENV, Relay

    relay = Relay(relay_url)
    proof = oidc.obtain(request, env)
    posted = relay.post(request.encode(), proof, env.get(KEY_ENV) or None)
    if posted.get("id") != request.id:
        raise NetworkError("the relay answered the post for another request")
    rid, secret = request.id, str(posted["wait_secret"])
    try:
        expires = min(int(posted["expires"]), int(time.time()) + request.duration)
    except (KeyError, TypeError, ValueError):
        raise NetworkError("the relay's answer to the post is malformed") from None
    proven = "proven by the CI's OIDC token" if proof else "UNPROVEN (no OIDC token)"
    note(f"request {rid} (key {request.fingerprint}) posted to {relay.url}, {proven}")
    note(f"approver: xtok approve --relay {relay.url} --pick {rid}")
    _job_summary(env, f"xtok approve --relay {relay.url} --pick {rid}", rid, proven)
    proof_expires = oidc.expires_at(proof) if proof and oidc.refreshable(env) else None
    failures = 0
    try:
        while True:
            left = expires - int(time.time())
            if left <= 0:
                raise TokenExpired(
                    f"request {rid}: no answer in time", tip="ask an approver, then run again"
                )
            note(f"waiting for an approval: {format_duration(left)} left")
            poll = min(POLL, left)
            try:
                if proof_expires is not None:
                    # GitHub's ID tokens live 5 minutes: keep the approver's proof fresh.
                    if proof_expires - time.time() < REFRESH_MARGIN:
                        fresh = oidc.obtain(request, env)
                        if fresh:
                            relay.refresh_proof(rid, secret, fresh)
                            proof_expires = oidc.expires_at(fresh)
                    if proof_expires is not None:
                        poll = max(1, min(poll, int(proof_expires - time.time()) - REFRESH_MARGIN))
                answer = relay.wait(rid, secret, poll)
                failures = 0
            except NetworkError as exc:
                failures += 1
                if failures > RETRIES:
                    raise
                note(f"{exc.message}; retrying")
                time.sleep(min(2**failures, 30))
                continue
            state = answer.get("state")
            if state == "approved" and isinstance(answer.get("sealed"), str):
                note(f"approved by {shown(answer.get('approver'))}")
                return str(answer["sealed"])
            if state == "denied":
                raise NotApproved(
                    f"request {rid} denied by {shown(answer.get('approver'))}: "
                    f"{shown(answer.get('reason'))}"
                )
            if state != "pending":
                raise TokenExpired(f"request {rid} is {shown(state)}", tip="run again")
    except KeyboardInterrupt:
        relay.cancel(rid, secret)
        raise


def _job_summary(env: Mapping[str, str], line: str, rid: str, proven: str) -> None:
    """GitHub Actions: the request and the approver's command in the job summary."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    from xtok.regular_file import open_regular

    # GitHub's runner made it; another job's process could have put a FIFO in its place.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    with os.fdopen(open_regular(path, flags, what="GITHUB_STEP_SUMMARY file"), "a") as f:
        f.write(f"### xtok: request `{rid}` waits for an approval\n\n{proven}\n\n")
        f.write(f"```\n{line}\n```\n")


@dataclass(frozen=True)
class Reviewed:
    """A request picked from the relay's inbox, with its proof checked by this xtok."""

    relay: Any
    entry: Mapping[str, Any]


def pick_from_inbox(relay_url: str, aws: Any, pick: str | None) -> Reviewed | None:
    """The request to review: `pick`, or one chosen from the listed inbox (on a terminal;
    elsewhere the list is the answer: None)."""
    from xtok.approval.relay_client import Relay
    from xtok.approval.request import RequestCode

    relay = Relay(relay_url)
    arn = relay.login(aws)
    note(f"logged in to {relay.url} as {shown(arn)}")
    if pick:
        entry = relay.get(pick)
        if entry.get("state") != "pending":
            raise UsageError(f"request {shown(pick)} is {shown(entry.get('state'))}")
        return Reviewed(relay, entry)
    entries = relay.pending()
    if not entries:
        note("the inbox is empty: no request is waiting")
        return None
    now = int(time.time())
    click.echo("xtok: waiting requests:", err=True)
    for n, entry in enumerate(entries, 1):
        try:
            request = RequestCode.parse(str(entry.get("request", "")))
        except Error as exc:  # shown as such, never parsed further
            click.echo(f"  {n:>2}  {shown(entry.get('id'))}  {exc.message}", err=True)
            continue
        who = request.identity
        verified = _proof_summary(entry, request)
        secrets = ", ".join(r.label for r in request.secrets)
        click.echo(
            f"  {n:>2}  {request.id}  {shown(who.ci)} {shown(who.job or '-')} "
            f"#{shown(who.build or '-')}  {verified}  [{shown(secrets)}]  "
            f"{format_duration(request.duration)}  waiting "
            f"{format_duration(max(0, now - int(entry.get('created') or now)))}",
            err=True,
        )
    if not stdin_is_tty():
        note("review and answer one with --pick ID (the second column)")
        return None
    number = click.prompt("Request number", type=click.IntRange(1, len(entries)), err=True)
    return Reviewed(relay, entries[number - 1])


def _proof_summary(entry: Mapping[str, Any], request: RequestCode) -> str:
    from xtok.approval import oidc

    proof = entry.get("proof")
    if not isinstance(proof, str) or not proof:
        return click.style("unproven", fg="red")
    try:
        verified = oidc.verify(proof, request, oidc.Trust.load())
    except Error as exc:
        return click.style(f"REFUSED ({shown(exc.message, 80)})", fg="red")
    subject = verified.claims.get("repository") or verified.claims.get("project_path") or ""
    return click.style(f"verified {shown(subject)}", fg="green")


def proof_lines(proof: str | None, request: RequestCode) -> list[tuple[str, str, str | None]]:
    """The approve screen's identity lines as (label, escaped text, colour): verified claims
    (from the CI's OIDC token, checked here), or a red warning that the identity above is only
    claimed. The caller wraps and colours them. Raises ProofRefused."""
    from xtok.approval import oidc

    trust = oidc.Trust.load()
    if not proof:
        if trust.require_proof:
            raise oidc.ProofRefused(
                "the request carries no OIDC proof and approver.toml requires one",
                tip="the pipeline must attach its CI's ID token (see the README)",
            )
        return [
            (
                "identity",
                "UNPROVEN: CI, job, build and commit above are only claimed by the "
                "request; compare the key fingerprint with the run's log",
                "red",
            )
        ]
    verified = oidc.verify(proof, request, trust, oidc.FileSeen())
    bound = {
        "key": "bound to this request's key",
        "first-use": "fixed audience: first use, bound to this key from now on",
    }[verified.binding]
    lines: list[tuple[str, str, str | None]] = [
        ("identity", f"VERIFIED by {shown(verified.issuer)} ({bound})", "green")
    ]
    lines += [("claim", f"{shown(k)} = {shown(v)}", None) for k, v in verified.shown()]
    return lines


def deny(reviewed: Reviewed, reason: str) -> None:
    reviewed.relay.deny(str(reviewed.entry.get("id")), reason)
    note(f"request {shown(reviewed.entry.get('id'))} denied: {shown(reason)}")


def run_via_relay(
    relay_url: str,
    refs: list[SecretRef],
    duration: int,
    role: str | None,
    env: Mapping[str, str],
) -> tuple[RequestCode, Credentials]:
    """Request, wait and open in this one process: the private key lives only in its memory
    (made non-dumpable by `xtok run` first), never on disk. Returns the request and the opened
    credentials."""
    from xtok.approval import ci, seal

    request, key = seal.new_request_in_memory(ci.detect(env), tuple(refs), duration, role)
    sealed = seal.SealedToken.parse(post_and_wait(relay_url, request, env))
    return request, seal.open_with_key(sealed, request, key)


def offer_denial(reviewed: Reviewed) -> None:
    """On a terminal, after a "no": deny on the relay with a reason, or leave it pending."""
    reason = str(click.prompt("Reason to deny (empty: leave it pending)", default="", err=True))
    if reason.strip():
        deny(reviewed, reason.strip())
