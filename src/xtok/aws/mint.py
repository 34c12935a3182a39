"""Minting temporary credentials with the caller's own AWS identity (`xtok token`).

With a role: AssumeRole plus an inline session policy naming exactly the requested secrets, the
caller as SourceIdentity and the job label as session name and tag (all visible in CloudTrail).
Without a role: GetSessionToken ("seed mode"), which carries all of the caller's powers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from xtok.aws.policy import Target, compact, session_policy
from xtok.aws.session import AwsConfig, aws_errors, client, region_of, session
from xtok.duration import format_duration
from xtok.errors import UsageError
from xtok.sensitive import Secret
from xtok.tokens.token import Credentials, Kind, Scope

MIN_DURATION = 900
MAX_ROLE_DURATION = 43_200  # AssumeRole: up to the role's MaxSessionDuration, at most 12 h
MAX_SESSION_TOKEN_DURATION = 129_600  # GetSessionToken: 36 h
LABEL_TAG = "xtok:for"

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_+=,.@-]+")
_TAG_CHARS = re.compile(r"[^\w .:/=+@-]+")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_MFA_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class MintRequest:
    duration: int
    role_arn: str | None = None
    target: Target | None = None
    label: str | None = None
    mfa_serial: str | None = None
    mfa_code: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  # more session tags (key, value), e.g. job, commit
    # Against another endpoint than AWS (e.g. `xtok server --dev --min-duration N`), shorter
    # sessions are that endpoint's to allow or refuse.
    custom_endpoint: bool = False

    def __post_init__(self) -> None:
        limit = MAX_ROLE_DURATION if self.role_arn else MAX_SESSION_TOKEN_DURATION
        api = "AssumeRole" if self.role_arn else "GetSessionToken"
        low = 1 if self.custom_endpoint else MIN_DURATION
        if not low <= self.duration <= limit:
            shorter = (
                ""
                if self.custom_endpoint
                else "; shorter ones only on a local endpoint "
                "(`xtok server --dev --min-duration N`, with --endpoint-url)"
            )
            raise UsageError(
                f"--duration {format_duration(self.duration)} is outside what {api} allows",
                tip=f"use {format_duration(low)} to {format_duration(limit)}{shorter}",
            )
        if self.role_arn is not None and not _ROLE_ARN.match(self.role_arn):
            raise UsageError(
                f"--role {self.role_arn!r} is not an IAM role ARN",
                tip="e.g. arn:aws:iam::123456789012:role/xtok-ci",
            )
        if self.role_arn is None and self.target is not None:
            raise UsageError(
                "--secret/--prefix narrow an AssumeRole session; GetSessionToken cannot be scoped",
                tip="add --role ARN (see `xtok setup aws`)",
            )
        if self.mfa_code is not None and not _MFA_CODE.match(self.mfa_code):
            raise UsageError("the MFA code must be 6 digits")


def aws_name(text: str, *, fallback: str = "xtok") -> str:
    """`text` made valid as a RoleSessionName or SourceIdentity: 2-64 of [\\w+=,.@-]."""
    # ':' is not in the set, so a SourceIdentity can never start with the reserved "aws:".
    name = _NAME_CHARS.sub("-", text).strip("-")[:64] or fallback
    return name if len(name) >= 2 else (name + "--")[:2]


def caller_name(arn: str) -> str:
    """alice for …:user/alice, the session name for …:assumed-role/R/session, root for root."""
    return aws_name(arn.rsplit("/", 1)[-1] if "/" in arn else arn.rsplit(":", 1)[-1])


def mint(
    config: AwsConfig,
    req: MintRequest,
    now: datetime,
    ask_mfa_code: Callable[[str], str],
) -> Credentials:
    """Mint credentials for `req`; `ask_mfa_code(serial)` is called when a code is needed."""
    sess = session(config)
    # botocore refuses DurationSeconds below AWS's minimum before sending: let the endpoint judge.
    sts = client(sess, "sts", config, validate=req.duration >= MIN_DURATION)
    serial = req.mfa_serial or profile_mfa_serial(sess)
    code = req.mfa_code
    if serial and code is None:
        code = ask_mfa_code(serial)
        if not _MFA_CODE.match(code):
            raise UsageError("the MFA code must be 6 digits")
    mfa: dict[str, Any] = {"SerialNumber": serial, "TokenCode": code} if serial else {}
    region = config.region or region_of(sess)
    if req.role_arn is None:
        with aws_errors("GetSessionToken failed"):
            resp = sts.get_session_token(DurationSeconds=req.duration, **mfa)
        return _credentials(resp, req, kind="session-token", name=None, region=region)
    with aws_errors("cannot identify the caller (GetCallerIdentity)"):
        me = caller_name(sts.get_caller_identity()["Arn"])
    name = aws_name(req.label) if req.label else aws_name(f"{me}-{now:%Y%m%dT%H%M%SZ}")
    extra: dict[str, Any] = dict(mfa)
    if req.target is not None:
        extra["Policy"] = compact(session_policy(req.target))
    tags = ((LABEL_TAG, req.label),) if req.label else ()
    if tags + req.tags:
        extra["Tags"] = [{"Key": k, "Value": _tag_value(v)} for k, v in tags + req.tags]
    with aws_errors(f"AssumeRole of {req.role_arn} failed"):
        resp = sts.assume_role(
            RoleArn=req.role_arn,
            RoleSessionName=name,
            DurationSeconds=req.duration,
            SourceIdentity=me,
            **extra,
        )
        return _credentials(resp, req, kind="assume-role", name=name, region=region)


def _credentials(
    resp: dict[str, Any], req: MintRequest, *, kind: Kind, name: str | None, region: str | None
) -> Credentials:
    c = resp["Credentials"]
    expiration: datetime = c["Expiration"]
    scope = None
    if req.target is not None:
        scope = Scope(secrets=req.target.secrets, prefix=req.target.prefix)
    return Credentials(
        access_key_id=c["AccessKeyId"],
        secret_access_key=Secret(c["SecretAccessKey"]),
        session_token=Secret(c["SessionToken"]),
        expiration=expiration,
        issued=expiration - timedelta(seconds=req.duration),
        kind=kind,
        session_name=name,
        scope=scope,
        region=region,
    )


def _tag_value(label: str) -> str:
    return _TAG_CHARS.sub("", label).strip()[:256] or "xtok"


def profile_mfa_serial(sess: Any) -> str | None:
    with aws_errors("cannot read the AWS profile"):
        serial = sess.get_scoped_config().get("mfa_serial")
    return serial if isinstance(serial, str) and serial else None
