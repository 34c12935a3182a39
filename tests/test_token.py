"""Token formats: round trips, integrity and expiry (clock injected)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from xtok.errors import TokenError, TokenExpired
from xtok.sensitive import Secret
from xtok.tokens import token as tokens

NOW = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzzSECRETPART"
SESSION = "FwoGZXIvYXdzEJr//////////wEaDM+session+token+SESSIONPART=="


def make(**overrides: object) -> tokens.Credentials:
    fields: dict[str, object] = dict(
        access_key_id="ASIAIOSFODNN7EXAMPLE",
        secret_access_key=Secret(SECRET_KEY),
        session_token=Secret(SESSION),
        expiration=NOW + timedelta(minutes=15),
        issued=NOW,
        kind="assume-role",
        session_name="job-42",
        scope=tokens.Scope(secrets=("prod/db", "prod/api")),
        region="eu-west-1",
    )
    fields.update(overrides)
    return tokens.Credentials(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    creds = make()
    text = tokens.encode(creds)
    assert text.startswith("xtok1.") and "\n" not in text and " " not in text
    assert tokens.parse(text) == creds


def test_prefix_scope_round_trips() -> None:
    creds = make(scope=tokens.Scope(prefix="prod/"))
    back = tokens.parse(tokens.encode(creds))
    assert back.scope == tokens.Scope(prefix="prod/")
    assert back.scope.allows("prod/x") and not back.scope.allows("dev/x")


def test_rewrapped_and_indented_token_is_accepted() -> None:
    text = tokens.encode(make())
    wrapped = "\n".join("   " + text[i : i + 40] for i in range(0, len(text), 40)) + "\r\n"
    assert tokens.parse(wrapped) == make()


def test_truncated_token_is_refused() -> None:
    text = tokens.encode(make())
    for cut in (10, len(text) // 2, len(text) - 1):
        with pytest.raises(TokenError, match="truncated, mistyped or altered"):
            tokens.parse(text[:cut])


@pytest.mark.parametrize("position", [8, 100, -12, -3])
def test_mistyped_token_is_refused(position: int) -> None:
    text = tokens.encode(make())
    i = position % len(text)
    flipped = "B" if text[i] != "B" else "C"
    with pytest.raises(TokenError, match="checksum"):
        tokens.parse(text[:i] + flipped + text[i + 1 :])


def test_errors_never_quote_secret_parts() -> None:
    text = tokens.encode(make())
    bad = text[:-2] + "zz"
    with pytest.raises(TokenError) as info:
        tokens.parse(bad)
    message = info.value.diagnostics()
    for part in (SECRET_KEY, SESSION, text[6:40]):
        assert part not in message


def test_newer_version_asks_for_upgrade() -> None:
    with pytest.raises(TokenError, match="newer than this xtok"):
        tokens.parse("xtok2.AAAA.BBBB")


def test_expired_token_is_refused_with_clock_injected() -> None:
    creds = make(expiration=NOW - timedelta(minutes=3))
    with pytest.raises(TokenExpired, match=r"expired at 13:57:00 UTC \(3m00s ago\)"):
        creds.check_fresh(NOW)


def test_min_ttl_refuses_a_token_about_to_explode() -> None:
    creds = make(expiration=NOW + timedelta(seconds=30))
    creds.check_fresh(NOW, min_ttl=10)
    with pytest.raises(TokenExpired, match="less than the 1m00s --min-ttl"):
        creds.check_fresh(NOW, min_ttl=60)


def test_legacy_colon_form() -> None:
    creds = make()
    back = tokens.parse(tokens.encode_legacy(creds))
    assert back.source == "legacy" and back.expiration is None
    assert back.access_key_id == creds.access_key_id
    assert back.secret_access_key == creds.secret_access_key
    assert back.session_token == creds.session_token


def test_legacy_in_wrong_order_is_explained() -> None:
    with pytest.raises(TokenError) as info:
        tokens.parse(f"ASIAIOSFODNN7EXAMPLE:{SESSION}:{SECRET_KEY}")
    assert "order is SessionToken:AccessKeyId:SecretAccessKey" in info.value.diagnostics()


def test_aws_cli_json_forms() -> None:
    assume_role = {
        "Credentials": {
            "AccessKeyId": "ASIAIOSFODNN7EXAMPLE",
            "SecretAccessKey": SECRET_KEY,
            "SessionToken": SESSION,
            "Expiration": "2026-11-25T14:15:00+00:00",
        },
        "AssumedRoleUser": {
            "AssumedRoleId": "AROA3XFRBF535PLBIFPI4:job-42",
            "Arn": "arn:aws:sts::123456789012:assumed-role/xtok-ci/job-42",
        },
    }
    creds = tokens.parse(json.dumps(assume_role, indent=4))
    assert creds.kind == "assume-role" and creds.session_name == "job-42"
    assert creds.expiration == NOW + timedelta(minutes=15)
    flat = {**assume_role["Credentials"], "Version": 1, "Expiration": "2026-11-25T14:15:00Z"}
    assert tokens.parse(json.dumps(flat)).kind == "session-token"
    assert tokens.parse(tokens.encode_json(make())).secret_access_key == Secret(SECRET_KEY)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "hello", "a:b", "::", "{not json", "[]", '{"Credentials": {}}', "x:ASIA:y"],
)
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(TokenError):
        tokens.parse(text)


def test_repr_hides_secret_parts() -> None:
    creds = make()
    shown = repr(creds) + str(creds.secret_access_key) + f"{creds.session_token}"
    assert SECRET_KEY not in shown and SESSION not in shown
    assert creds.key_hint == "…MPLE"


def test_aws_names_from_labels() -> None:
    from xtok.aws.mint import aws_name, caller_name

    assert aws_name("build #7 of deploy") == "build-7-of-deploy"
    assert aws_name("x") == "x-" and aws_name("###") == "xtok"
    assert aws_name("aws:thing") == "aws-thing"
    assert len(aws_name("j" * 200)) == 64
    assert caller_name("arn:aws:iam::123456789012:user/team/alice") == "alice"
    assert caller_name("arn:aws:sts::123456789012:assumed-role/admin/bob@corp") == "bob@corp"
    assert caller_name("arn:aws:iam::123456789012:root") == "root"


def test_durations() -> None:
    from xtok.duration import format_duration, parse_duration
    from xtok.errors import UsageError

    assert [parse_duration(t) for t in ("900", "15m", "1h30m", "45s", " 2H ")] == [
        900,
        900,
        5400,
        45,
        7200,
    ]
    assert format_duration(900) == "15m00s" and format_duration(3723) == "1h02m03s"
    for bad in ("", "15x", "m", "1.5h", "-5m", "15m abc"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_the_start_of_a_token_holds_no_secret_part() -> None:
    """What a truncated display shows (the first 60 characters) decodes to metadata only."""
    text = tokens.encode(make())
    head = text[len("xtok1.") : 60]
    decoded = base64.urlsafe_b64decode(head[: len(head) // 4 * 4])
    assert b'"kind"' in decoded
    assert b"ASIA" not in decoded and SECRET_KEY[:4].encode() not in decoded
