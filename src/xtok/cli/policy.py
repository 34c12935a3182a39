"""The IAM side: `xtok policy …`, `xtok setup aws`, `xtok revoke`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from xtok.cli.app import (
    arn_options,
    aws_options,
    cli,
    json_option,
    mfa_max_age_option,
    note,
    prefix_option,
    print_json,
    secrets_option,
    stamp,
    target_of,
    trust_option,
    unsafe_no_mfa,
    utcnow,
    warn,
    with_options,
)
from xtok.duration import parse_duration
from xtok.errors import UsageError


@cli.group()
def policy() -> None:
    """Print the IAM policy documents xtok relies on (no AWS call)."""


@policy.command("reader", short_help="Identity policy: an MFA session reads the named secrets.")
@prefix_option
@secrets_option
@with_options(arn_options)
@unsafe_no_mfa
def policy_reader(
    prefix: str | None, secrets: tuple[str, ...], arn_region: str, account: str, unsafe_no_mfa: bool
) -> None:
    """Identity policy that lets an MFA session read the named secrets (or a prefix).

    One secret is matched as NAME-?????? (its ARN suffix), a prefix as P*.
    """
    from xtok.aws.policy import pretty, reader_policy

    doc = reader_policy(
        target_of(secrets, prefix, arn_region, account), require_mfa=not unsafe_no_mfa
    )
    click.echo(pretty(doc))


@policy.command("role", short_help="The role's trust policy and its permission policy.")
@trust_option
@prefix_option
@secrets_option
@mfa_max_age_option
@with_options(arn_options)
@unsafe_no_mfa
@click.option(
    "--only",
    type=click.Choice(["trust", "permissions"]),
    help="Print only one of the two documents.",
)
def policy_role(
    trust: tuple[str, ...],
    prefix: str | None,
    secrets: tuple[str, ...],
    mfa_max_age: int,
    arn_region: str,
    account: str,
    unsafe_no_mfa: bool,
    only: str | None,
) -> None:
    """The role's trust policy (named principals, MFA) and its permission policy."""
    from xtok.aws.policy import pretty, role_permission_policy, role_trust_policy

    trust_doc = role_trust_policy(trust, require_mfa=not unsafe_no_mfa, mfa_max_age=mfa_max_age)
    permissions = role_permission_policy(target_of(secrets, prefix, arn_region, account))
    if only == "trust":
        click.echo(pretty(trust_doc))
    elif only == "permissions":
        click.echo(pretty(permissions))
    else:
        click.echo(pretty({"TrustPolicy": trust_doc, "PermissionPolicy": permissions}))


@policy.command("session", short_help="The session policy `xtok token --role` attaches.")
@secrets_option
@prefix_option
def policy_session(secrets: tuple[str, ...], prefix: str | None) -> None:
    """The inline session policy `xtok token --role` attaches (at most 2,048 characters)."""
    from xtok.aws.policy import pretty, session_policy

    click.echo(pretty(session_policy(target_of(secrets, prefix))))


@cli.group()
def setup() -> None:
    """Create the AWS resources xtok needs."""


@setup.command("aws", short_help="Create or update the role and its policies.")
@click.option(
    "--role-name", required=True, metavar="NAME", help="Name of the role approvers assume."
)
@trust_option
@prefix_option
@secrets_option
@mfa_max_age_option
@click.option(
    "--max-session",
    metavar="DURATION",
    default="1h",
    show_default=True,
    help="The role's MaxSessionDuration (1h-12h).",
)
@click.option(
    "--account", default=None, metavar="ID", help="Account id for ARNs (default: the caller's)."
)
@unsafe_no_mfa
@click.option("--dry-run", is_flag=True, help="Print the IAM calls instead of making them.")
@json_option
@aws_options()
def setup_aws(
    role_name: str,
    trust: tuple[str, ...],
    prefix: str | None,
    secrets: tuple[str, ...],
    mfa_max_age: int,
    max_session: str,
    account: str | None,
    unsafe_no_mfa: bool,
    dry_run: bool,
    as_json: bool,
    aws: Any,
) -> None:
    """Create or update the role, its trust policy and its permission policy (idempotent)."""
    from xtok.aws.provision import RoleSpec, setup

    if unsafe_no_mfa:
        warn("--unsafe-no-mfa: stolen long-term keys of a trusted principal can assume the role")
    spec = RoleSpec(
        name=role_name,
        principals=tuple(trust),
        secrets=tuple(secrets),
        prefix=prefix,
        account=account,
        require_mfa=not unsafe_no_mfa,
        mfa_max_age=mfa_max_age,
        max_session=parse_duration(max_session),
    )
    result = setup(aws, spec, dry_run=dry_run)
    if as_json:
        print_json(
            {
                "RoleArn": result.role_arn,
                "Applied": result.applied,
                "Calls": [c.cli() for c in result.calls],
            }
        )
        return
    for call in result.calls:
        click.echo(call.cli() if dry_run else f"done: {call.cli()}")
    state = "would change" if dry_run else "changed"
    summary = f"{len(result.calls)} call(s) {state}" if result.calls else "already up to date"
    note(f"role {result.role_arn}: {summary}")


@cli.command("revoke", short_help="Deny every session issued before TIME.")
@click.option("--role", "role_name", metavar="NAME", help="Revoke sessions of this role.")
@click.option("--user", "user_name", metavar="NAME", help="Revoke temporary sessions of this user.")
@click.option("--before", metavar="TIME", help="ISO 8601 time (default: now).")
@click.option("--dry-run", is_flag=True, help="Print the IAM call instead of making it.")
@json_option
@aws_options()
def revoke_cmd(
    role_name: str | None,
    user_name: str | None,
    before: str | None,
    dry_run: bool,
    as_json: bool,
    aws: Any,
) -> None:
    """Deny every session issued before TIME (AWSRevokeOlderSessions on aws:TokenIssueTime)."""
    from xtok.aws.revoke import plan, revoke

    when = _parse_time(before) if before else utcnow()
    call = plan(role=role_name, user=user_name, before=when)
    if not dry_run:
        revoke(aws, call)
    if as_json:
        print_json({"Applied": not dry_run, "Before": when.isoformat(), "Call": call.cli()})
    elif dry_run:
        click.echo(call.cli())
    else:
        who = f"role {role_name}" if role_name else f"user {user_name}"
        note(f"revoked: sessions of {who} issued before {stamp(when)} are now denied")


def _parse_time(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--before {text!r} is not an ISO 8601 time", tip="e.g. 2026-11-25T14:00:00Z"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
