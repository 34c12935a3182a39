"""The root of xtok's error hierarchy and its exit codes.

Every failure xtok reports is an `Error`: the CLI prints `diagnostics()` (one line, plus a tip)
and exits with `exit_code`. xtok's own codes live in 200-215, above the 128+N range of a child
killed by signal N (N <= 64), so `xtok run` can pass any ordinary child status through unchanged.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of xtok's own failures (documented in the README and `xtok run --help`)."""

    USAGE = 200
    TOKEN_INVALID = 201
    TOKEN_EXPIRED = 202
    CREDENTIALS_REJECTED = 203
    ACCESS_DENIED = 204
    NOT_FOUND = 205
    NETWORK = 206
    AWS = 207
    CONFIG = 208
    COMMAND_FAILED_TO_START = 209
    INTERRUPTED = 210
    AUDIT_BROKEN = 211
    INTERNAL = 215


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.USAGE: "bad command line or input (option, argument, value)",
    ExitCode.TOKEN_INVALID: "token malformed, corrupted or of an unknown version",
    ExitCode.TOKEN_EXPIRED: "token expired, or less life left than --min-ttl",
    ExitCode.CREDENTIALS_REJECTED: "AWS rejected the credentials (unknown key, signature, clock)",
    ExitCode.ACCESS_DENIED: "AWS denied the action (policy, scope, MFA, revoked session)",
    ExitCode.NOT_FOUND: "secret, role or user not found",
    ExitCode.NETWORK: "endpoint unreachable or connection failed",
    ExitCode.AWS: "any other AWS error (e.g. PackedPolicyTooLarge, limits)",
    ExitCode.CONFIG: (
        "configuration missing or unusable: AWS credentials or region, a key, state or config file"
    ),
    ExitCode.COMMAND_FAILED_TO_START: "the command to run was not found or not executable",
    ExitCode.INTERRUPTED: "interrupted before the command started",
    ExitCode.AUDIT_BROKEN: "the audit log's hash chain is broken (xtok audit --verify)",
    ExitCode.INTERNAL: "internal error in xtok (a bug: please report it)",
}


class Error(Exception):
    """Base of every error xtok reports to a user.

    The message must never contain a secret value: it is printed, logged and stored by CI.
    """

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, tip: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tip = tip

    def diagnostics(self) -> str:
        """The text shown to the user: one line, and a tip line when there is one."""
        text = f"xtok: error: {self.message}"
        if self.tip:
            text += f"\n  tip: {self.tip}"
        return text


class UsageError(Error):
    exit_code = ExitCode.USAGE


class TokenError(Error):
    """The token cannot be parsed or fails its integrity check."""

    exit_code = ExitCode.TOKEN_INVALID


class TokenExpired(Error):
    exit_code = ExitCode.TOKEN_EXPIRED


class CredentialsRejected(Error):
    exit_code = ExitCode.CREDENTIALS_REJECTED


class AccessDenied(Error):
    exit_code = ExitCode.ACCESS_DENIED


class NotFound(Error):
    exit_code = ExitCode.NOT_FOUND


class NetworkError(Error):
    exit_code = ExitCode.NETWORK


class AwsError(Error):
    exit_code = ExitCode.AWS


class ConfigError(Error):
    exit_code = ExitCode.CONFIG


class LaunchError(Error):
    exit_code = ExitCode.COMMAND_FAILED_TO_START


class Interrupted(Error):
    exit_code = ExitCode.INTERRUPTED
