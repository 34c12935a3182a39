"""The `xtok` command line: a thin layer that parses, calls one module, prints one result.

Every failure is an `xtok.errors.Error`, printed as one line plus a tip, with its exit code.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from xtok import __version__
from xtok.duration import format_duration, parse_duration
from xtok.errors import EXIT_CODE_MEANINGS, Error, ExitCode, Interrupted, UsageError

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
TOKEN_ENV_DEFAULT = "XTOK_TOKEN"  # noqa: S105 - a variable name


def _now() -> datetime:
    return datetime.now(UTC)


def _warn(text: str) -> None:
    click.echo(f"xtok: warning: {text}", err=True)


def _info(text: str) -> None:
    click.echo(f"xtok: {text}", err=True)


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _clock(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%H:%M:%S UTC")


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def aws_options(*, profile: bool = True) -> Callable[[F], F]:
    """Add --profile/--region/--endpoint-url and pass them on as one `aws` AwsConfig."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from xtok.aws import AwsConfig

            kwargs["aws"] = AwsConfig(
                profile=kwargs.pop("profile", None),
                region=kwargs.pop("region"),
                endpoint_url=kwargs.pop("endpoint_url"),
            )
            return fn(*args, **kwargs)

        options = [
            click.option(
                "--endpoint-url",
                metavar="URL",
                envvar="XTOK_ENDPOINT_URL",
                show_envvar=True,
                help="AWS-compatible endpoint (default: AWS, or AWS_ENDPOINT_URL).",
            ),
            click.option(
                "--region",
                metavar="REGION",
                envvar=["XTOK_REGION", "AWS_REGION"],
                show_envvar=True,
                help="AWS region (default: the AWS configuration chain).",
            ),
        ]
        if profile:
            options.append(
                click.option(
                    "--profile",
                    metavar="NAME",
                    envvar="XTOK_PROFILE",
                    show_envvar=True,
                    help="AWS profile (default: AWS_PROFILE or default).",
                )
            )
        for option in options:
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
secrets_option = click.option(
    "--secret", "secrets", multiple=True, metavar="NAME", help="A secret by name (repeatable)."
)
prefix_option = click.option("--prefix", metavar="P", help="All secrets whose name starts with P.")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xtok")
def cli() -> None:
    """xtok: exploding tokens for CI.

    A privileged CI run uses a permanent secret only while a human-approved,
    short-lived AWS credential is alive. CI keeps no permanent secret.
    """


# --- secret -------------------------------------------------------------------------------


@cli.group()
def secret() -> None:
    """Store and list secrets in AWS Secrets Manager (values go in, never out)."""


@secret.command("put")
@click.argument("name")
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read the value from this file (binary files are stored as SecretBinary).",
)
@click.option("--description", help="Description stored with the secret.")
@click.option(
    "--keep-newline",
    is_flag=True,
    help="Keep a trailing newline of a text value (stripped by default).",
)
@json_option
@aws_options()
def secret_put(
    name: str,
    from_file: str | None,
    description: str | None,
    keep_newline: bool,
    as_json: bool,
    aws: Any,
) -> None:
    """Create secret NAME or put a new version of it.

    The value comes from a hidden prompt (asked twice) on a terminal, from --from-file, or
    from stdin. It is never accepted on the command line.
    """
    from xtok import store
    from xtok.policy import check_secret_name, name_looks_suffixed

    check_secret_name(name)
    value = _read_secret_value(from_file, keep_newline)
    if name_looks_suffixed(name):
        _warn(f"{name!r} ends like an ARN suffix (-XXXXXX); AWS advises against such names")
    result = store.put(aws, name, value, description)
    if as_json:
        _print_json(
            {
                "Name": result.name,
                "ARN": result.arn,
                "VersionId": result.version_id,
                "Created": result.created,
            }
        )
    else:
        verb = "created" if result.created else "new version of"
        click.echo(f"{verb} {result.name} ({result.arn}), version {result.version_id}")


def _read_secret_value(from_file: str | None, keep_newline: bool) -> Any:
    from xtok.sensitive import Secret

    if from_file is not None and from_file != "-":
        try:
            with open(from_file, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise UsageError(f"cannot read {from_file}: {exc.strerror}") from None
    elif from_file is None and sys.stdin.isatty():
        text = click.prompt(
            "Secret value",
            hide_input=True,
            confirmation_prompt=True,
            err=True,
            default="",
            show_default=False,
        )
        raw = text.encode()
    else:
        raw = sys.stdin.buffer.read()
    if not keep_newline:
        try:
            raw.decode("utf-8")
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        except UnicodeDecodeError:
            pass  # binary values are stored byte for byte
    if not raw:
        raise UsageError("the secret value is empty")
    return Secret(raw)


@secret.command("ls")
@prefix_option
@json_option
@aws_options()
def secret_ls(prefix: str | None, as_json: bool, aws: Any) -> None:
    """List secret names (and when they changed), optionally under a prefix."""
    from xtok import store

    rows = store.list_names(aws, prefix)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['Name']}\t{row.get('LastChangedDate') or row.get('CreatedDate') or ''}")


@secret.command("describe")
@click.argument("name")
@json_option
@aws_options()
def secret_describe(name: str, as_json: bool, aws: Any) -> None:
    """Show a secret's metadata (ARN, dates, versions). Never its value."""
    from xtok import store

    meta = store.describe(aws, name)
    if as_json:
        _print_json(meta)
        return
    for key, value in meta.items():
        if key == "VersionIdsToStages":
            for version, stages in value.items():
                click.echo(f"{'Version':<17}{version} {','.join(stages)}")
        else:
            click.echo(f"{key:<17}{value}")


# --- policy -------------------------------------------------------------------------------


@cli.group()
def policy() -> None:
    """Print the IAM policy documents xtok relies on (no AWS call)."""


def _target(
    secrets: Sequence[str], prefix: str | None, region: str = "*", account: str = "*"
) -> Any:
    from xtok.policy import Target

    return Target(tuple(secrets), prefix, region=region, account=account)


arn_options = [
    click.option(
        "--region", "arn_region", default="*", show_default=True, help="Region in the secret ARNs."
    ),
    click.option(
        "--account", default="*", show_default=True, help="Account id in the secret ARNs."
    ),
]


def _with(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


unsafe_no_mfa = click.option(
    "--unsafe-no-mfa", is_flag=True, help="Drop the MFA condition (not recommended)."
)


@policy.command("reader")
@prefix_option
@secrets_option
@_with(arn_options)
@unsafe_no_mfa
def policy_reader(
    prefix: str | None, secrets: tuple[str, ...], arn_region: str, account: str, unsafe_no_mfa: bool
) -> None:
    """Identity policy that lets an MFA session read the named secrets (or a prefix).

    One secret is matched as NAME-?????? (its ARN suffix), a prefix as P*.
    """
    from xtok.policy import pretty, reader_policy

    doc = reader_policy(
        _target(secrets, prefix, arn_region, account), require_mfa=not unsafe_no_mfa
    )
    click.echo(pretty(doc))


mfa_max_age_option = click.option(
    "--mfa-max-age",
    type=int,
    default=3600,
    show_default=True,
    metavar="SECONDS",
    help="Maximum age of the approver's MFA.",
)
trust_option = click.option(
    "--trust",
    "trust",
    multiple=True,
    required=True,
    metavar="PRINCIPAL_ARN",
    help="IAM user or role allowed to assume the role (repeatable).",
)


@policy.command("role")
@trust_option
@prefix_option
@secrets_option
@mfa_max_age_option
@_with(arn_options)
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
    from xtok.policy import pretty, role_permission_policy, role_trust_policy

    trust_doc = role_trust_policy(trust, require_mfa=not unsafe_no_mfa, mfa_max_age=mfa_max_age)
    permissions = role_permission_policy(_target(secrets, prefix, arn_region, account))
    if only == "trust":
        click.echo(pretty(trust_doc))
    elif only == "permissions":
        click.echo(pretty(permissions))
    else:
        click.echo(pretty({"TrustPolicy": trust_doc, "PermissionPolicy": permissions}))


@policy.command("session")
@secrets_option
@prefix_option
def policy_session(secrets: tuple[str, ...], prefix: str | None) -> None:
    """The inline session policy `xtok token --role` attaches (at most 2,048 characters)."""
    from xtok.policy import pretty, session_policy

    click.echo(pretty(session_policy(_target(secrets, prefix))))


# --- setup --------------------------------------------------------------------------------


@cli.group()
def setup() -> None:
    """Create the AWS resources xtok needs."""


@setup.command("aws")
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
    from xtok.provision import RoleSpec, setup

    if unsafe_no_mfa:
        _warn("--unsafe-no-mfa: stolen long-term keys of a trusted principal can assume the role")
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
        _print_json(
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
    _info(f"role {result.role_arn}: {summary}")


# --- token --------------------------------------------------------------------------------


@cli.command("token")
@click.option(
    "--role",
    "role_arn",
    envvar="XTOK_ROLE",
    show_envvar=True,
    metavar="ARN",
    help="AssumeRole this role (recommended); without it: GetSessionToken.",
)
@secrets_option
@prefix_option
@click.option(
    "--duration",
    metavar="DURATION",
    default="15m",
    show_default=True,
    envvar="XTOK_DURATION",
    show_envvar=True,
    help="Lifetime: 15m, 1h, 900 (seconds).",
)
@click.option(
    "--mfa-serial",
    envvar="XTOK_MFA_SERIAL",
    show_envvar=True,
    help="MFA device ARN (default: the profile's mfa_serial).",
)
@click.option("--mfa-code", help="Current MFA code (prompted for when needed).")
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
    from xtok import token as tokens
    from xtok.mint import MintRequest, mint

    target = _target(secrets, prefix) if (secrets or prefix) else None
    req = MintRequest(
        duration=parse_duration(duration),
        role_arn=role_arn,
        target=target,
        label=label,
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
    )
    if role_arn is None:
        _warn(
            "no --role: GetSessionToken carries ALL of your powers for its lifetime; "
            "prefer --role with --secret"
        )
    creds = mint(aws, req, _now(), _ask_mfa_code)
    text = {"xtok": tokens.encode, "legacy": tokens.encode_legacy, "json": tokens.encode_json}[fmt](
        creds
    )
    _emit(text, creds, copy=copy)


def _emit(text: str, creds: Any, *, copy: bool, what: str = "token") -> None:
    """Print (or copy) a token on one line; say on stderr when it explodes."""
    if copy:
        from xtok.clipboard import copy as to_clipboard

        _info(f"{what} copied to the clipboard ({to_clipboard(text)})")
    else:
        click.echo(text)
    if creds.expiration is not None:
        left = format_duration(creds.seconds_left(_now()) or 0)
        _info(f"explodes at {_clock(creds.expiration)}, in {left}")


def _ask_mfa_code(serial: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError(f"an MFA code is needed for {serial}", tip="pass --mfa-code CODE")
    return str(click.prompt(f"MFA code for {serial}", err=True)).strip()


# --- inspect ------------------------------------------------------------------------------


@cli.command("inspect")
@click.argument("token_text", metavar="[TOKEN | -]", required=False)
@json_option
def inspect_cmd(token_text: str | None, as_json: bool) -> None:
    """Show what a token is: kind, key id (last 4), expiry, scope. Never its secret parts.

    Reads stdin when TOKEN is - or absent (or $XTOK_TOKEN when stdin is a terminal).
    """
    from xtok import token as tokens

    if token_text is None or token_text == "-":  # noqa: S105 - "-" means stdin
        env = os.environ.get(TOKEN_ENV_DEFAULT)
        text = env if (token_text is None and sys.stdin.isatty() and env) else _read_stdin()
    else:
        _warn("a token on the command line lands in shell history; prefer `xtok inspect -`")
        text = token_text
    kind = text.strip()[:5]
    if kind in ("xtokr", "xtoks"):
        _inspect_sealing(text, kind, as_json)
        return
    creds = tokens.parse(text)
    now = _now()
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
        _print_json(info)
        return
    if left is None:
        expiry = "unknown (this format carries no expiry; AWS decides)"
    elif left <= 0:
        expiry = f"{_stamp(creds.expiration)} (EXPIRED {format_duration(left)} ago)"  # type: ignore[arg-type]
    else:
        expiry = f"{_stamp(creds.expiration)} (in {format_duration(left)})"  # type: ignore[arg-type]
    scope = creds.scope.describe() if creds.scope else "not narrowed by xtok"
    lines = [
        ("format", creds.source),
        ("kind", creds.kind),
        ("key id", creds.key_hint),
        ("session", creds.session_name or "-"),
        ("scope", scope),
        ("region", creds.region or "-"),
        ("issued", _stamp(creds.issued) if creds.issued else "-"),
        ("expires", expiry),
    ]
    for key, value in lines:
        click.echo(f"{key + ':':<9}{value}")


def _inspect_sealing(text: str, kind: str, as_json: bool) -> None:
    """What a request code or a sealed token shows without the run's private key."""
    from xtok.request import RequestCode
    from xtok.seal import SealedToken

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
        _print_json(info)
        return
    for key, value in info.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        if isinstance(value, dict):
            shown = " ".join(f"{k}={v}" for k, v in value.items())
        if key == "duration":
            shown = format_duration(int(value))
        click.echo(f"{key + ':':<17}{shown}")


def _read_stdin() -> str:
    if sys.stdin.isatty():
        return str(click.prompt("Token", hide_input=True, err=True))
    return sys.stdin.read()


# --- run ----------------------------------------------------------------------------------


def _exit_code_table() -> str:
    rows = "\n".join(f"  {int(code)}  {EXIT_CODE_MEANINGS[code]}" for code in ExitCode)
    return (
        "Exit status: the command's own; 128+N if it was killed by signal N.\n"
        "xtok's own failures (the command did not run):\n\n\b\n" + rows
    )


@cli.command("run", context_settings={"allow_interspersed_args": False}, epilog=_exit_code_table())
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
@click.option(
    "--secret",
    "secret_specs",
    multiple=True,
    metavar="ENV=NAME[#JSONKEY]",
    help="Put secret NAME (or one key of its JSON) in ENV (repeatable).",
)
@click.option(
    "--secret-file",
    "secret_file_specs",
    multiple=True,
    metavar="ENV=NAME[#JSONKEY]",
    help="Write the secret to a 0600 file on tmpfs; put its path in ENV (repeatable).",
)
@click.option(
    "--sealed",
    is_flag=True,
    help="The token is sealed (from `xtok approve`): open it with this run's request key "
    "(deleted on first use); the secrets are the request's.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="XTOK_STATE_DIR",
    show_envvar=True,
    help="Where `xtok request` keeps its key (default: /dev/shm/xtok-UID).",
)
@click.option(
    "--min-ttl",
    metavar="DURATION",
    default="60s",
    show_default=True,
    envvar="XTOK_MIN_TTL",
    show_envvar=True,
    help="Refuse a token with less life left than this.",
)
@aws_options(profile=False)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(
    token_stdin: bool,
    token_file: str | None,
    token_env: str | None,
    secret_specs: tuple[str, ...],
    secret_file_specs: tuple[str, ...],
    sealed: bool,
    state_dir: Path | None,
    min_ttl: str,
    command: tuple[str, ...],
    aws: Any,
) -> int:
    """Fetch secrets with a token, then run COMMAND with them; output is masked.

    \b
    xtok run --token-env XTOK_TOKEN --secret DB_PASS=prod/db -- ./deploy.sh

    \b
    xtok run --sealed --token-file approval.txt -- ./deploy.sh

    The command gets the secrets, never the token or any AWS credential.
    Tokens are never accepted on the command line.
    """
    from xtok import runner
    from xtok import token as tokens
    from xtok.fetch import check_unique, fetch, parse_ref

    _refuse_token_as_command(command)
    refs = [parse_ref(s) for s in secret_specs]
    refs += [parse_ref(s, as_file=True) for s in secret_file_specs]
    if sealed and refs:
        raise UsageError(
            "--sealed takes its secrets from the request",
            tip="drop --secret/--secret-file; they were fixed by `xtok request`",
        )
    if not refs and not sealed:
        raise UsageError("no secret requested", tip="add --secret ENV=NAME")
    check_unique(refs)
    ttl = parse_duration(min_ttl)
    text, var = _read_token(token_stdin, token_file, token_env)
    if sealed:
        from xtok import seal

        request, creds = seal.open_sealed(
            seal.SealedToken.parse(text), state_dir or seal.default_state_dir()
        )
        refs = list(request.secrets)
    else:
        creds = tokens.parse(text)
    creds.check_fresh(_now(), ttl)
    if creds.expiration is None:
        _warn("this token format carries no expiry: AWS alone decides whether it still works")
    values = fetch(refs, creds, aws)
    return runner.run(
        command,
        values,
        drop_env=[var] if var else [],
        stdin_devnull=token_stdin and not sys.stdin.isatty(),
    )


def _refuse_token_as_command(command: Sequence[str]) -> None:
    from xtok import token as tokens
    from xtok.errors import TokenError

    try:
        tokens.parse(command[0])
    except TokenError:
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
        return _read_stdin(), None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(), None
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


# --- request / approve (sealed tokens) -----------------------------------------------------


@cli.command("request")
@click.option(
    "--secret",
    "secret_specs",
    multiple=True,
    metavar="ENV=NAME[#JSONKEY]",
    help="A secret the run needs, and the variable to put it in (repeatable).",
)
@click.option(
    "--secret-file",
    "secret_file_specs",
    multiple=True,
    metavar="ENV=NAME[#JSONKEY]",
    help="A secret to deliver as a 0600 file whose path goes in ENV (repeatable).",
)
@click.option(
    "--duration",
    default="15m",
    show_default=True,
    metavar="DURATION",
    envvar="XTOK_DURATION",
    show_envvar=True,
    help="The lifetime asked for.",
)
@click.option(
    "--role",
    "role_arn",
    envvar="XTOK_ROLE",
    show_envvar=True,
    metavar="ARN",
    help="The role the approver should assume (they may name another).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="XTOK_STATE_DIR",
    show_envvar=True,
    help="Private (0700) directory for the one-time key (default: /dev/shm/xtok-UID).",
)
@click.option("--ci", "ci_kind", metavar="KIND", help="CI kind (default: detected).")
@click.option("--job", help="Job name (default: detected).")
@click.option("--build", help="Build number (default: detected).")
@click.option("--build-url", help="Build URL (default: detected).")
@click.option("--commit", help="Commit (default: detected).")
def request_cmd(
    secret_specs: tuple[str, ...],
    secret_file_specs: tuple[str, ...],
    duration: str,
    role_arn: str | None,
    state_dir: Path | None,
    ci_kind: str | None,
    job: str | None,
    build: str | None,
    build_url: str | None,
    commit: str | None,
) -> None:
    """Ask for a sealed token: print a request code for an approver (pipeline side).

    The one-time private key stays in a private state directory; only this run can open the
    token that `xtok approve` seals for the code. The run's identity (CI, job, build, commit)
    is detected for Jenkins, GitHub Actions and GitLab CI.
    """
    from xtok import ci, seal
    from xtok.fetch import check_unique, parse_ref
    from xtok.mint import MAX_ROLE_DURATION, MIN_DURATION

    refs = [parse_ref(s) for s in secret_specs]
    refs += [parse_ref(s, as_file=True) for s in secret_file_specs]
    if not refs:
        raise UsageError("no secret requested", tip="add --secret ENV=NAME")
    check_unique(refs)
    seconds = parse_duration(duration)
    if not MIN_DURATION <= seconds <= MAX_ROLE_DURATION:
        raise UsageError(f"--duration {format_duration(seconds)} is outside 15m00s-12h00m00s")
    identity = ci.identify(
        os.environ, ci=ci_kind, job=job, build=build, url=build_url, commit=commit
    )
    request = seal.new_request(
        identity, tuple(refs), seconds, role_arn, state_dir or seal.default_state_dir()
    )
    click.echo(request.encode())
    _info(
        f"request {request.id} (key {request.fingerprint}) for {identity.label}: ask an "
        "approver to run `xtok approve <code>`"
    )


@cli.command("approve")
@click.argument("code", metavar="REQUEST_CODE")
@click.option(
    "--role",
    "role_arn",
    envvar="XTOK_ROLE",
    show_envvar=True,
    metavar="ARN",
    help="The role to assume (default: the one the request names).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripted use).")
@click.option("--copy", is_flag=True, help="Copy the sealed token to the clipboard.")
@click.option(
    "--jenkins",
    "jenkins_url",
    metavar="BUILD_URL",
    help="Submit the sealed token to this build's pending input (Jenkins REST API).",
)
@click.option(
    "--mfa-serial",
    envvar="XTOK_MFA_SERIAL",
    show_envvar=True,
    help="MFA device ARN (default: the profile's mfa_serial).",
)
@click.option("--mfa-code", help="Current MFA code (prompted for when needed).")
@aws_options()
def approve_cmd(
    code: str,
    role_arn: str | None,
    yes: bool,
    copy: bool,
    jenkins_url: str | None,
    mfa_serial: str | None,
    mfa_code: str | None,
    aws: Any,
) -> None:
    """Approve a run's request: mint a scoped token and seal it to that run (approver side).

    Shows what is being approved and asks to confirm. Mints with your own identity an
    AssumeRole session whose session policy names exactly the requested secrets, and prints
    the sealed token (safe to paste anywhere: only the requesting run can open it, once).
    REQUEST_CODE may be - to read it from stdin.
    """
    from xtok import seal
    from xtok.mint import MintRequest, mint
    from xtok.request import RequestCode

    request = RequestCode.parse(sys.stdin.read() if code == "-" else code)
    role = role_arn or request.role
    if role is None:
        raise UsageError("the request names no role", tip="pass --role ARN")
    who = request.identity
    lines = [
        ("CI", who.ci),
        ("job", who.job or "-"),
        ("build", (who.build or "-") + (f"  ({who.url})" if who.url else "")),
        ("commit", who.commit or "-"),
        (
            "secrets",
            ", ".join(
                f"{r.env}={r.label}" + (" (file)" if r.as_file else "") for r in request.secrets
            ),
        ),
        ("lifetime", format_duration(request.duration)),
        ("role", role + ("  (not the one requested)" if request.role not in (None, role) else "")),
        ("request", f"{request.id}  key {request.fingerprint}"),
    ]
    click.echo("xtok: approve this run?", err=True)
    for key, value in lines:
        click.echo(f"  {key + ':':<10}{value}", err=True)
    if not yes:
        if not sys.stdin.isatty() or code == "-":
            raise UsageError("confirmation needed", tip="run on a terminal, or pass --yes")
        if not click.confirm("Approve?", default=False, err=True):
            raise Interrupted("not approved: nothing was minted")
    req = MintRequest(
        duration=request.duration,
        role_arn=role,
        target=_target([r.name for r in request.secrets], None),
        label=who.label if (who.job or who.build) else f"xtok-{request.id}",
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
        tags=tuple(
            (f"xtok:{k}", v)
            for k, v in (
                ("job", who.job),
                ("build", who.build),
                ("commit", who.commit),
                ("request", request.id),
            )
            if v
        ),
    )
    creds = mint(aws, req, _now(), _ask_mfa_code)
    text = seal.seal(request, creds).encode()
    if jenkins_url:
        from xtok.jenkins import submit

        input_id = submit(jenkins_url, text)
        _info(f"sealed token submitted to {jenkins_url} (input {input_id})")
        if creds.expiration is not None:
            _info(f"explodes at {_clock(creds.expiration)}")
    else:
        _emit(text, creds, copy=copy, what="sealed token")


# --- revoke -------------------------------------------------------------------------------


@cli.command("revoke")
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
    from xtok.revoke import plan, revoke

    when = _parse_time(before) if before else _now()
    call = plan(role=role_name, user=user_name, before=when)
    if not dry_run:
        revoke(aws, call)
    if as_json:
        _print_json({"Applied": not dry_run, "Before": when.isoformat(), "Call": call.cli()})
    elif dry_run:
        click.echo(call.cli())
    else:
        who = f"role {role_name}" if role_name else f"user {user_name}"
        _info(f"revoked: sessions of {who} issued before {_stamp(when)} are now denied")


def _parse_time(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--before {text!r} is not an ISO 8601 time", tip="e.g. 2026-11-25T14:00:00Z"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# --- server -------------------------------------------------------------------------------

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
) -> None:
    """Run the local AWS-compatible endpoint (STS, Secrets Manager, IAM).

    Unlike moto it enforces what makes a token explode: SigV4 signatures, session expiry,
    policies and session policies, trust policies, MFA, revocation.
    """
    if ctx.invoked_subcommand is not None:
        return
    from xtok.server.bootstrap import bind, is_loopback, parse_listen, serve

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if min_duration is not None and not dev:
        raise UsageError("--min-duration is only allowed with --dev")
    if min_duration is not None and not 1 <= min_duration <= 900:
        raise UsageError("--min-duration must be 1-900 seconds")
    host, port = parse_listen(listen)
    if not is_loopback(host) and tls_cert is None:
        _warn(
            f"LISTENING ON {host} WITHOUT TLS: credentials and secrets cross the network in "
            "clear text; use --tls-cert/--tls-key or a loopback address"
        )
    if dev:
        _serve_dev(host, port, tls_cert, tls_key, min_duration or 900, data, master_key_file)
        return
    endpoint = _open_endpoint(data, master_key_file)
    sock = bind(host, port)
    scheme = "https" if tls_cert else "http"
    _info(f"serving {endpoint.db.path.parent} on {scheme}://{host}:{sock.getsockname()[1]}")
    serve(endpoint, sock, tls_cert=tls_cert, tls_key=tls_key)


def _serve_dev(
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    min_duration: int,
    data: Path | None,
    key_file: Path | None,
) -> None:
    """A fresh endpoint with an admin: throw-away data and an in-memory key unless --data and
    --master-key-file name where to keep them (e.g. for `xtok audit` afterwards)."""
    import shutil
    import tempfile

    from xtok.server.app import Endpoint
    from xtok.server.bootstrap import bind, create_admin, serve
    from xtok.server.crypto import new_key

    directory = data or Path(tempfile.mkdtemp(prefix="xtok-dev-"))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        master = _master_key(key_file) if key_file else new_key()
        endpoint = Endpoint(directory, master, min_duration=min_duration)
        key = create_admin(endpoint)
        sock = bind(host, port)
        scheme = "https" if tls_cert else "http"
        url = f"{scheme}://{host}:{sock.getsockname()[1]}"
        click.echo(_exports(url, key, endpoint.settings.region), nl=True)
        sys.stdout.flush()
        _info(f"dev endpoint on {url} (throw-away data; sessions from {min_duration} s)")
        serve(endpoint, sock, tls_cert=tls_cert, tls_key=tls_key)
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
            _info(f"created master key {path} (0600): keep it apart from the data directory")
        key = _master_key(path)
    endpoint = Endpoint(directory, key, account=account, region=region)
    admin = create_admin(endpoint)
    _info(f"initialised {directory}; the admin key below is shown only once")
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
        _info("audit log intact")
        return 0
    rows = [{"seq": seq, **rec.__dict__} for seq, rec in endpoint.audit.rows()]
    if as_json:
        _print_json(rows)
        return 0
    for row in rows:
        who = row["principal"] or "-"
        if row["source_identity"]:
            who += f" (by {row['source_identity']})"
        outcome = row["decision"] + (f" {row['error']}" if row["error"] else "")
        click.echo(
            f"{row['seq']:>6} {row['time']} {outcome:<24} {row['action']:<34} "
            f"{row['resource'] or '-'} {who}"
        )
    return 0


class AuditBroken(Error):
    exit_code = ExitCode.AUDIT_BROKEN


# --- demo ---------------------------------------------------------------------------------


@cli.command("demo")
def demo_cmd() -> int:
    """Run the whole flow, narrated, against a throw-away local endpoint.

    Stores a secret, sets up the role, mints a scoped token with MFA, runs a masked pipeline
    step, shows a secret outside the scope denied, a token exploding, a revocation and the
    audit trail.
    """
    from xtok import demo

    return demo.run(click.echo)


# --- completion ---------------------------------------------------------------------------


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    Enable it with: eval "$(xtok completion bash)"
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # click knows every shell the Choice allows
        raise UsageError(f"no completion for {shell}")
    click.echo(cls(cli, {}, "xtok", "_XTOK_COMPLETE").source())


# --- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run xtok; return its exit status. Never lets a traceback reach the user."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name="xtok", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("xtok: aborted", err=True)
        return int(ExitCode.INTERRUPTED)
    except click.exceptions.UsageError as exc:
        message = exc.format_message()
        if message.startswith("Got unexpected extra argument"):
            # It may be a value someone meant to pass (a secret, a token): never echo it.
            message = "unexpected extra argument (not shown: xtok never echoes argument values)"
        hint = f"\n  tip: see `{exc.ctx.command_path} --help`" if exc.ctx else ""
        click.echo(f"xtok: error: {message}{hint}", err=True)
        return int(ExitCode.USAGE)
    except click.exceptions.ClickException as exc:
        click.echo(f"xtok: error: {exc.format_message()}", err=True)
        return int(ExitCode.USAGE)
    except Error as exc:
        click.echo(exc.diagnostics(), err=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("xtok: interrupted", err=True)
        return int(Interrupted.exit_code)
    except Exception as exc:
        click.echo(f"xtok: internal error ({type(exc).__name__}); please report it", err=True)
        return int(ExitCode.INTERNAL)
    return result if isinstance(result, int) else 0
