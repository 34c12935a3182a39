"""botocore sessions for xtok and the translation of AWS failures into xtok errors.

botocore is imported lazily: commands that never talk to AWS (`--help`, `inspect`, `policy`) must
start fast. botocore's debug logging is never enabled here: it prints signed requests, session
tokens included.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xtok.display import shown
from xtok.errors import (
    AccessDenied,
    AwsError,
    ConfigError,
    CredentialsRejected,
    Error,
    NetworkError,
    NotFound,
    TokenExpired,
    UsageError,
)
from xtok.run.mask import redact

if TYPE_CHECKING:
    from botocore.session import Session as BotocoreSession


# STS and IAM are global; Secrets Manager needs a region and has no sensible default.
_GLOBAL_SERVICES_REGION = "us-east-1"
_MESSAGE_LIMIT = 300

_TIP_EXPIRED = "the token has exploded: ask the approver for a new one"
_TIP_DENIED = (
    "check the policies and the token's scope (`xtok inspect`); revoked or MFA-less "
    "sessions are denied too"
)
_TIP_REJECTED = "check the credentials or token, and this machine's clock"
_TIP_NETWORK = "check --endpoint-url / AWS_ENDPOINT_URL and the network"
_TIP_CREDENTIALS = "configure AWS credentials (aws configure, AWS_PROFILE or AWS_* variables)"
_TIP_REGION = "pass --region or set AWS_REGION"

_BY_CODE: dict[str, tuple[type[Error], str, str]] = {
    "ExpiredToken": (TokenExpired, "the credentials have expired", _TIP_EXPIRED),
    "ExpiredTokenException": (TokenExpired, "the credentials have expired", _TIP_EXPIRED),
    "AccessDenied": (AccessDenied, "access denied", _TIP_DENIED),
    "AccessDeniedException": (AccessDenied, "access denied", _TIP_DENIED),
    "403": (AccessDenied, "access denied (HTTP 403)", _TIP_DENIED),
    "ResourceNotFoundException": (NotFound, "not found", "check the name with `xtok secret ls`"),
    "NoSuchEntity": (NotFound, "not found", "check the IAM name"),
    "InvalidClientTokenId": (CredentialsRejected, "unknown access key", _TIP_REJECTED),
    "UnrecognizedClientException": (CredentialsRejected, "unknown access key", _TIP_REJECTED),
    "InvalidAccessKeyId": (CredentialsRejected, "unknown access key", _TIP_REJECTED),
    "SignatureDoesNotMatch": (CredentialsRejected, "bad request signature", _TIP_REJECTED),
    "InvalidSignatureException": (CredentialsRejected, "bad request signature", _TIP_REJECTED),
    "IncompleteSignature": (CredentialsRejected, "incomplete signature", _TIP_REJECTED),
    "MissingAuthenticationToken": (CredentialsRejected, "no credentials sent", _TIP_REJECTED),
    "RequestExpired": (
        CredentialsRejected,
        "request date outside AWS's 15-minute window",
        "fix this machine's clock (NTP)",
    ),
    "PackedPolicyTooLarge": (
        AwsError,
        "session policy too large for AWS",
        "use fewer secrets per token, or --prefix",
    ),
}


@dataclass(frozen=True)
class AwsConfig:
    """Where and as whom to call AWS; None means the standard AWS configuration chain."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        if self.endpoint_url is not None:
            check_endpoint_url(self.endpoint_url)


def check_endpoint_url(url: str) -> str:
    """`url` if it is http(s)://HOST[:PORT][/PATH]; botocore would fail later, less clearly."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        ok = False
    ok = ok and url.isascii() and url.isprintable() and " " not in url
    if not ok or parts.query or parts.fragment:
        raise UsageError(
            f"endpoint URL {shown(url)!r} is not an http(s) URL of the form "
            "http(s)://HOST[:PORT][/PATH]",
            tip="give the scheme, e.g. --endpoint-url http://127.0.0.1:4566",
        )
    return url


def session(config: AwsConfig) -> BotocoreSession:
    """A botocore session (boto3's engine, without boto3's import cost) on the profile/env
    chain. (The fetch step signs with the token's credentials itself: see xtok.aws.fetch.)"""
    import botocore.session

    sess = botocore.session.Session(profile=config.profile)
    if config.region:
        sess.set_config_variable("region", config.region)
    return sess


def region_of(sess: BotocoreSession) -> str | None:
    with aws_errors("cannot read the AWS configuration"):
        region = sess.get_config_variable("region")
    return str(region) if region else None


def custom_endpoint(config: AwsConfig) -> bool:
    """Whether calls go to another endpoint than AWS's own (--endpoint-url, AWS_ENDPOINT_URL)."""
    return bool(config.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))


def client(sess: BotocoreSession, service: str, config: AwsConfig, *, validate: bool = True) -> Any:
    """A client with short timeouts and few retries: a CI step should fail fast and clearly.
    `validate=False` skips botocore's check of parameters against AWS's documented minimums."""
    from botocore.config import Config

    region = region_of(sess)
    if region is None and service in ("sts", "iam"):
        region = _GLOBAL_SERVICES_REGION
    with aws_errors(f"cannot create the {service} client"):
        try:
            return sess.create_client(
                service,
                region_name=region,
                endpoint_url=config.endpoint_url,
                config=Config(
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                    **_validation(validate),
                ),
            )
        except ValueError as exc:  # botocore's "Invalid endpoint: …"
            raise UsageError(str(exc), tip="e.g. --endpoint-url http://127.0.0.1:4566") from None


def _validation(validate: bool) -> dict[str, Any]:
    # Only ever turned off: an explicit True would override a profile's own setting.
    return {} if validate else {"parameter_validation": False}


def error_for(
    code: str,
    message: str,
    what: str,
    scrub: Sequence[bytes] = (),
    *,
    with_token: bool = False,
    denied_tip: str | None = None,
) -> Error:
    """The xtok error for an AWS error code. AWS's own words are kept where they tell the
    reader what to fix (a denial says which action, resource or MFA check failed); `with_token`
    says the call was made with a token, so a denial may be the token's narrow scope;
    `denied_tip` is the caller's tip for a denial AWS's words do not explain better."""
    known = _BY_CODE.get(code)
    detail = _scrubbed(" ".join(message.split()), scrub)
    if known and known[0] is AccessDenied:
        _, reason, _ = known
        why = f": {detail}" if detail else ""
        tip = _denied_tip(detail, with_token, denied_tip)
        return AccessDenied(f"{what}: {reason} ({code}){why}", tip=tip)
    if known:
        cls, reason, tip = known
        return cls(f"{what}: {reason} ({code})", tip=tip)
    return AwsError(f"{what}: {code}{': ' + detail if detail else ''}")


def _denied_tip(message: str, with_token: bool, fallback: str | None) -> str:
    if "invalid MFA one time pass code" in message:
        return "the MFA code was wrong or already used (each code works once): wait for the next"
    if "MultiFactorAuthentication" in message:
        return "check the MFA device (--mfa-serial, or mfa_serial in the profile): it must be yours"
    if fallback:
        return fallback
    if "sts:AssumeRole" in message:
        return (
            "the role's trust policy does not admit you (or wants MFA): check that it names "
            "your ARN (`xtok policy role --trust ARN`) and pass --mfa-code"
        )
    if with_token:
        return _TIP_DENIED
    action = re.search(r"not authorized to perform: (\S+)", message)
    if action:
        return f"your identity may not call {action.group(1)}: ask for that permission"
    return "check the IAM policies that apply to you, and whether they require MFA"


def _scrubbed(message: str, scrub: Sequence[bytes]) -> str:
    """`message` cut short, with any `scrub` value in it masked. A value longer than the
    message cannot be in it (and may be longer than the masker takes, as a 64 KB secret is)."""
    size = len(message.encode("utf-8", "surrogateescape"))
    return shown(redact(message, [v for v in scrub if len(v) <= size]))[:_MESSAGE_LIMIT]


@contextmanager
def aws_errors(
    what: str, *, scrub: Sequence[bytes] = (), denied_tip: str | None = None
) -> Iterator[None]:
    """Translate botocore failures inside the block into xtok errors that start with `what`.

    `scrub` lists values (e.g. the secret being stored) that AWS or botocore might echo in a
    message; they are masked before the message is shown.
    """
    import botocore.exceptions as bx

    try:
        yield
    except bx.ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(
            err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        )
        raise error_for(
            code, str(err.get("Message") or ""), what, scrub, denied_tip=denied_tip
        ) from None
    except bx.NoRegionError:
        raise ConfigError(f"{what}: no AWS region configured", tip=_TIP_REGION) from None
    except (bx.NoCredentialsError, bx.PartialCredentialsError, bx.ProfileNotFound) as exc:
        raise ConfigError(f"{what}: {exc}", tip=_TIP_CREDENTIALS) from None
    except (bx.EndpointConnectionError, bx.ConnectionError, bx.HTTPClientError) as exc:
        url = shown_url(exc.kwargs.get("endpoint_url"))
        where = f"no answer from {url}" if url else "no answer from the endpoint"
        raise NetworkError(f"{what}: {where} ({type(exc).__name__})", tip=_TIP_NETWORK) from None
    except bx.ParamValidationError as exc:
        # botocore quotes offending values in this message: scrub before showing it.
        detail = _scrubbed(str(exc), scrub)
        raise UsageError(f"{what}: {detail}") from None
    except bx.BotoCoreError as exc:
        raise AwsError(f"{what}: {type(exc).__name__}") from None


def shown_url(url: object) -> str | None:
    """The URL a connection failed on, without user info or query (they may hold credentials)."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
