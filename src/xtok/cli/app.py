"""The `xtok` command group, its entry point and the helpers every command shares.

Every failure is an `xtok.errors.Error`, printed as one line plus a tip, with its exit code.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from xtok import VERSION_MESSAGE, __version__
from xtok.duration import format_duration
from xtok.errors import Error, ExitCode, Interrupted, UsageError

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
TOKEN_ENV_DEFAULT = "XTOK_TOKEN"  # noqa: S105 - a variable name


def utcnow() -> datetime:
    return datetime.now(UTC)


def warn(text: str) -> None:
    click.echo(f"xtok: warning: {text}", err=True)


def note(text: str) -> None:
    click.echo(f"xtok: {text}", err=True)


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def clock(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%H:%M:%S UTC")


def stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def aws_options(*, profile: bool = True) -> Callable[[F], F]:
    """Add --profile/--region/--endpoint-url and pass them on as one `aws` AwsConfig."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from xtok.aws.session import AwsConfig

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


# Which module registers each top-level command: a command's module (and what it imports) is
# loaded only when that command runs, so `xtok run` does not pay for `xtok approve`.
COMMAND_MODULES = {
    "approve": "tokens",
    "audit": "server",
    "demo": "server",
    "inbox": "inbox",
    "inspect": "tokens",
    "policy": "policy",
    "relay": "relay",
    "request": "tokens",
    "revoke": "policy",
    "run": "run",
    "secret": "secret",
    "server": "server",
    "setup": "policy",
    "token": "tokens",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"xtok.cli.{COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # suggest from every command, loaded or not
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None


def load_all() -> click.Group:
    """The group with every command registered (for callers that walk `cli.commands`)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"xtok.cli.{module}")
    return cli


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xtok", message=VERSION_MESSAGE)
def cli() -> None:
    """xtok: exploding tokens for CI.

    A privileged CI run uses a permanent secret only while a human-approved,
    short-lived AWS credential is alive. CI keeps no permanent secret.

    New here? `xtok demo` shows the whole flow against a throw-away local endpoint.
    """


def target_of(
    secrets: Sequence[str], prefix: str | None, region: str = "*", account: str = "*"
) -> Any:
    from xtok.aws.policy import Target

    return Target(tuple(secrets), prefix, region=region, account=account)


arn_options = [
    click.option(
        "--region", "arn_region", default="*", show_default=True, help="Region in the secret ARNs."
    ),
    click.option(
        "--account", default="*", show_default=True, help="Account id in the secret ARNs."
    ),
]


def with_options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


# Served over HTTPS: `xtok server` and `xtok relay`.
tls_options = with_options(
    [
        click.option(
            "--tls-cert",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="TLS certificate (PEM); with --tls-key.",
        ),
        click.option(
            "--tls-key",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="TLS private key (PEM).",
        ),
    ]
)


def check_tls(cert: Path | None, key: Path | None) -> None:
    import os

    from xtok.regular_file import open_regular

    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for path, what in ((cert, "TLS certificate"), (key, "TLS key")):
        if path is None:
            continue
        try:  # ssl reads them by name later: a FIFO there would block the server's start
            os.close(open_regular(path, what=what))
        except OSError as exc:
            raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


unsafe_no_mfa = click.option(
    "--unsafe-no-mfa", is_flag=True, help="Drop the MFA condition (not recommended)."
)


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


secret_spec_options = with_options(
    [
        click.option(
            "--secret",
            "secret_specs",
            multiple=True,
            metavar="ENV=NAME[#JSONKEY]",
            help="Put secret NAME (or one key of its JSON) in ENV (repeatable).",
        ),
        click.option(
            "--secret-file",
            "secret_file_specs",
            multiple=True,
            metavar="ENV=NAME[#JSONKEY]",
            help="Write the secret to a 0600 file on tmpfs; put its path in ENV (repeatable).",
        ),
    ]
)
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="XTOK_STATE_DIR",
    show_envvar=True,
    help="Private (0700) directory of the request's one-time key (default: /dev/shm/xtok-UID).",
)
mfa_options = with_options(
    [
        click.option(
            "--mfa-serial",
            envvar="XTOK_MFA_SERIAL",
            show_envvar=True,
            help="MFA device ARN (default: the profile's mfa_serial).",
        ),
        click.option("--mfa-code", help="Current MFA code (prompted for when needed)."),
    ]
)


def duration_option(help_text: str = "Lifetime: 15m, 1h, 900 (seconds).") -> Callable[[F], F]:
    return click.option(
        "--duration",
        metavar="DURATION",
        default="15m",
        show_default=True,
        envvar="XTOK_DURATION",
        show_envvar=True,
        help=help_text,
    )


def relay_option(help_text: str) -> Callable[[F], F]:
    """--relay, defaulting to $XTOK_RELAY_URL."""
    return click.option(
        "--relay",
        "relay_url",
        metavar="URL",
        envvar="XTOK_RELAY_URL",
        show_envvar=True,
        help=help_text,
    )


def role_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--role", "role_arn", envvar="XTOK_ROLE", show_envvar=True, metavar="ARN", help=help_text
    )


def parse_refs(secret_specs: Sequence[str], secret_file_specs: Sequence[str]) -> list[Any]:
    """The `--secret` and `--secret-file` requests, checked (each ENV once)."""
    from xtok.refs import check_unique, parse_ref

    refs = [parse_ref(s) for s in secret_specs]
    refs += [parse_ref(s, as_file=True) for s in secret_file_specs]
    check_unique(refs)
    return refs


def emit_token(text: str, creds: Any, *, copy: bool, what: str = "token") -> None:
    """Print (or copy) a token on one line; say on stderr when it explodes."""
    if copy:
        from xtok.clipboard import copy as to_clipboard

        note(f"{what} copied to the clipboard ({to_clipboard(text)})")
    else:
        click.echo(text)
    if creds.expiration is not None:
        left = format_duration(creds.seconds_left(utcnow()) or 0)
        note(f"explodes at {clock(creds.expiration)}, in {left}")


def stdin_is_tty() -> bool:
    """False also when there is no stdin at all (a closed descriptor 0, as some CI runners do)."""
    return sys.stdin is not None and sys.stdin.isatty()


def stdin_bytes() -> bytes:
    return sys.stdin.buffer.read() if sys.stdin is not None else b""


def ask_mfa_code(serial: str) -> str:
    if not stdin_is_tty():
        raise UsageError(f"an MFA code is needed for {serial}", tip="pass --mfa-code CODE")
    return str(click.prompt(f"MFA code for {serial}", err=True)).strip()


def hidden_prompt(text: str) -> str:
    """A hidden answer on the terminal (may be empty)."""
    return str(click.prompt(text, hide_input=True, err=True, default="", show_default=False))


def confirm(text: str) -> bool:
    """Yes or no on the terminal, asked again in xtok's voice (not click's "Error: …")."""
    while True:
        answer = str(click.prompt(f"{text} [y/N]", default="", show_default=False, err=True))
        if answer.strip().lower() in ("", "n", "no"):
            return False
        if answer.strip().lower() in ("y", "yes"):
            return True
        note("please answer y or n")


def read_stdin() -> str:
    if stdin_is_tty():
        return hidden_prompt("Token")
    return stdin_bytes().decode("utf-8", "replace")


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


_COMMAND_WORD = re.compile(r"[a-z][a-z-]{0,23}")  # what a mistyped command name looks like


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
        elif isinstance(exc, click.exceptions.NoSuchCommand) and not _COMMAND_WORD.fullmatch(
            exc.command_name
        ):  # a pasted token in a command's place: not echoed either
            message = "no such command (not shown: xtok never echoes argument values)"
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
