"""xtok's SigV4 signer (used by the fetch to avoid importing botocore) signs exactly as
botocore's `SigV4Auth` does, over randomized requests; botocore is the reference."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from xtok.aws.sign import host_header, sign

RESERVED = {"host", "x-amz-date", "x-amz-security-token", "authorization", "x-amz-content-sha256"}
UNSIGNED = set(botocore.auth.SIGNED_HEADERS_BLACKLIST)

TOKEN_CHARS = string.ascii_letters + "/+="
label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
header_name = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=20).filter(
    lambda n: n.lower() not in RESERVED | UNSIGNED
)
header_value = st.text(string.printable.replace("\x0b", "").replace("\x0c", ""), max_size=40).map(
    lambda v: v.replace("\r", " ").replace("\n", " ")
)
segment = st.one_of(
    st.sampled_from(["", ".", "..", "a b", "~x", "%41", "é", "a+b", "x=y", "!'()*"]),
    st.text(string.ascii_letters + string.digits + "-._~", max_size=8),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, object]:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(
        st.one_of(
            st.builds(lambda *p: ".".join(p), label, label, label),
            st.just("127.0.0.1"),
            st.just("[::1]"),
            st.just("Secretsmanager.US-East-1.amazonaws.com"),
        )
    )
    port = draw(st.sampled_from(["", ":80", ":443", ":4566", ":8443"]))
    path = "/".join(draw(st.lists(segment, max_size=5)))
    names = draw(st.lists(header_name, max_size=6, unique_by=str.lower))
    return {
        "method": draw(st.sampled_from(["POST", "GET", "PUT", "post"])),
        "url": f"{scheme}://{host}{port}" + (f"/{path}" if path or draw(st.booleans()) else ""),
        "headers": {n: draw(header_value) for n in names},
        "body": draw(st.binary(max_size=200)),
        "access_key": draw(st.text(string.ascii_uppercase + string.digits, min_size=16)),
        "secret_key": draw(st.text(string.ascii_letters + string.digits + "/+", min_size=1)),
        "session_token": draw(st.one_of(st.none(), st.text(TOKEN_CHARS, min_size=1))),
        "region": draw(st.sampled_from(["us-east-1", "us-gov-west-1", "cn-north-1", "eu-west-3"])),
        "service": draw(st.sampled_from(["secretsmanager", "sts", "iam"])),
        "when": draw(st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1))),
    }


@settings(max_examples=400, deadline=None)
@given(requests())
def test_signatures_equal_botocores(req: dict[str, object]) -> None:
    when = req["when"]
    assert isinstance(when, datetime)
    headers = req["headers"]
    assert isinstance(headers, dict)
    ours = sign(
        str(req["method"]),
        str(req["url"]),
        headers,
        bytes(req["body"]),  # type: ignore[call-overload]
        access_key=str(req["access_key"]),
        secret_key=str(req["secret_key"]),
        session_token=req["session_token"],  # type: ignore[arg-type]
        region=str(req["region"]),
        service=str(req["service"]),
        when=when.replace(tzinfo=UTC),
    )
    reference = AWSRequest(str(req["method"]), str(req["url"]), dict(headers), req["body"])
    creds = Credentials(req["access_key"], req["secret_key"], req["session_token"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)
        SigV4Auth(creds, req["service"], req["region"]).add_auth(reference)
    assert ours["Authorization"] == reference.headers["Authorization"]
    assert ours["X-Amz-Date"] == reference.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == reference.headers.get("X-Amz-Security-Token")
    assert ours["Host"] == botocore.auth._host_from_url(str(req["url"]))


def test_aws_documentation_example() -> None:
    """The example of AWS's SigV4 documentation (GET /?…) lies outside the scope (a query),
    so the check is botocore's own test-suite vector for a POST without query."""
    signed = sign(
        "POST",
        "https://example.amazonaws.com/",
        {},
        b"",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token=None,
        region="us-east-1",
        service="service",
        when=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
    )
    assert signed["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    )


def test_a_query_string_is_refused_not_signed_wrongly() -> None:
    with pytest.raises(ValueError, match="query"):
        sign(
            "GET",
            "https://h/?a=b",
            {},
            b"",
            access_key="A",
            secret_key="s",
            session_token=None,
            region="r",
            service="s",
            when=datetime.now(UTC),
        )
    assert host_header("https://User@Host.Example:443/x") == "host.example"
