"""`xtok secret put|ls|describe`: values go in, never out."""

from __future__ import annotations

from typing import Any

import click

from xtok.cli.app import (
    aws_options,
    cli,
    hidden_prompt,
    json_option,
    note,
    prefix_option,
    print_json,
    stdin_bytes,
    stdin_is_tty,
    warn,
)
from xtok.display import shown
from xtok.errors import UsageError


@cli.group(short_help="Store and list secrets in AWS Secrets Manager.")
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
    from xtok.aws import store
    from xtok.aws.policy import check_secret_name, name_looks_suffixed

    check_secret_name(name)
    value = _read_secret_value(from_file, keep_newline)
    if name_looks_suffixed(name):
        warn(f"{name!r} ends like an ARN suffix (-XXXXXX); AWS advises against such names")
    result = store.put(aws, name, value, description)
    if as_json:
        print_json(
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
    elif from_file is None and stdin_is_tty():
        raw = _prompt_twice().encode()
    else:
        raw = stdin_bytes()
    if not keep_newline:
        try:
            raw.decode("utf-8")
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        except UnicodeDecodeError:
            pass  # binary values are stored byte for byte
    if not raw:
        raise UsageError("the secret value is empty")
    return Secret(raw)


def _prompt_twice(attempts: int = 3) -> str:
    """The value typed twice alike, hidden (click's own confirmation speaks in its voice)."""
    for _ in range(attempts):
        first = hidden_prompt("Secret value")
        if first == hidden_prompt("Repeat for confirmation"):
            return first
        note("the two values differ; type the same value twice")
    raise UsageError(
        f"the two values differed {attempts} times: nothing was stored",
        tip="or give the value on stdin or with --from-file",
    )


@secret.command("ls", short_help="List secret names, optionally under a prefix.")
@prefix_option
@json_option
@aws_options()
def secret_ls(prefix: str | None, as_json: bool, aws: Any) -> None:
    """List secret names (and when they changed), optionally under a prefix."""
    from xtok.aws import store

    rows = store.list_names(aws, prefix)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        changed = row.get("LastChangedDate") or row.get("CreatedDate") or ""
        click.echo(f"{shown(row['Name'])}\t{changed}")


@secret.command("describe")
@click.argument("name")
@json_option
@aws_options()
def secret_describe(name: str, as_json: bool, aws: Any) -> None:
    """Show a secret's metadata (ARN, dates, versions). Never its value."""
    from xtok.aws import store

    meta = store.describe(aws, name)
    if as_json:
        print_json(meta)
        return
    for key, value in meta.items():
        if key == "VersionIdsToStages":
            for version, stages in value.items():
                click.echo(f"{'Version':<17}{shown(version)} {shown(','.join(stages))}")
        else:  # whoever wrote the description, tags or labels may be hostile: escape them
            click.echo(f"{key:<17}{shown(value)}")
