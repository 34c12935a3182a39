"""Pipeline-written and token-carried fields are hostile: they never paint a terminal, and no
input, however forged, makes xtok fail with an internal error (exit 215)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DevServer, Result, aws_env, run_xtok
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from xtok.approval.request import RequestCode
from xtok.approval.seal import SealedToken
from xtok.errors import Error
from xtok.tokens import armor
from xtok.tokens import token as tokens

PUB = armor.b64e(b"k" * 32)
GOOD_REQUEST: dict[str, Any] = {
    "id": "0123456789abcdef",
    "run": {"ci": "jenkins", "job": "deploy", "build": "42", "url": "https://ci/job/deploy/42/"},
    "secrets": [{"env": "DB", "name": "prod/db", "key": "password"}],
    "duration": 900,
    "role": "arn:aws:iam::123456789012:role/xtok-ci",
    "pub": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
    "created": 1,
}
# Each repaints or reorders a line on a terminal: backspace, carriage return, newline, an ESC
# sequence (erase line), a C1 CSI, right-to-left override, a bidi isolate, a zero-width joiner.
NASTY = ["\b", "\r", "\n", "\x1b[2K", "\x9b2K", "\u202e", "\u2067", "\u200d", "\u2028"]


def request_code(**changes: Any) -> str:
    payload = json.loads(json.dumps(GOOD_REQUEST))
    for path, value in changes.items():
        target = payload
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value
    return armor.encode("xtokr", 1, payload)


FIELDS = ["run__ci", "run__job", "run__build", "run__url", "run__commit", "role", "secrets__0__key"]


@pytest.mark.parametrize("char", NASTY)
@pytest.mark.parametrize("field", FIELDS)
def test_request_code_with_control_or_bidi_character_is_refused(field: str, char: str) -> None:
    with pytest.raises(Error, match="control or bidi character") as info:
        RequestCode.parse(request_code(**{field: f"deploy{char}prod"}))
    assert info.value.exit_code == 201
    assert not any(c in info.value.diagnostics() for c in "\b\r\x1b\x9b\u202e\u2067\u200d")


def test_approve_and_inspect_refuse_a_forged_code_before_showing_it() -> None:
    """The classic forgery: `\\r` and an ESC erase-line make the approve screen show a genuine
    job while the code names another."""
    code = request_code(run__job="evil\x1b[2K\rdeploy")
    env = aws_env("http://127.0.0.1:9")  # never reached
    for args in (["approve", code, "--yes"], ["inspect", code]):
        res = run_xtok(args, env)
        assert res.code == 201 and "control or bidi character (\\x1b)" in res.err, res.err
        assert "\x1b" not in res.both and "evil" not in res.both
    assert run_xtok(["inspect", request_code()], env).code == 0  # the genuine one shows


def test_a_long_field_cannot_wrap_into_a_fake_line() -> None:
    """Without control characters, a field padded to the terminal's width would wrap into what
    looks like another line (a fake `secrets:` or `request:`). xtok wraps long values itself,
    continuation lines indented under the value, so no field text starts where labels do."""
    fake = "secrets:  DB=prod/harmless   request:  0123456789abcdef  key 0011223344556677"
    code = request_code(run__job="deploy" + " " * 70 + fake, run__url="https://ci/" + "x" * 300)
    env = aws_env("http://127.0.0.1:9")  # never reached: nothing is minted without a role
    shown = [run_xtok(["approve", code, "--yes"], env).err, run_xtok(["inspect", code], env).out]
    for text in shown:
        lines = [line for line in text.splitlines() if not line.startswith("xtok: error")]
        assert all(len(line) <= 80 for line in lines), text
        labels = [line.split(":")[0].strip() for line in lines if not line.startswith(" " * 9)]
        assert labels.count("secrets") == 1 and labels.count("request") <= 1, text


def test_plain_token_fields_are_shown_escaped() -> None:
    payload = {
        "kind": "assume-role",
        "name": "deploy\x1b]0;pwned\x07\u202e",
        "region": "eu-west-1",  # a malformed region is refused (see below)
        "scope": {"secrets": ["a\x1b[1Ab"]},
        "k": "ASIAIOSFODNN7EXAMPLE",
        "s": "s" * 40,
        "t": "t" * 40,
    }
    res = run_xtok(["inspect", "-"], aws_env("http://127.0.0.1:9"), stdin=_xtok(payload))
    assert res.code == 0, res.err
    assert "session: deploy\\x1b]0;pwned\\x07\\u202e" in res.out
    assert "a\\x1b[1Ab" in res.out
    assert not any(c in res.out for c in "\x1b\x07\r\u202e")


def _xtok(payload: dict[str, Any]) -> str:
    return armor.encode("xtok", 1, payload)


def _run(token: str, *args: str) -> Result:
    env = {**aws_env("http://127.0.0.1:9"), "XTOK_TOKEN": token}
    return run_xtok(["run", *args, "--secret", "A=b/c", "--", "echo", "ran"], env)


@pytest.mark.parametrize(
    "token",
    [
        _xtok({"k": "ASIAIOSFODNN7EXAMPLE", "s": "s" * 40, "t": "t" * 40, "exp": 10**20}),
        _xtok({"k": "ASIAIOSFODNN7EXAMPLE", "s": "s" * 40, "t": "t" * 40, "iat": -(10**19)}),
        json.dumps(
            {
                "AccessKeyId": "ASIAIOSFODNN7EXAMPLE",
                "SecretAccessKey": "s" * 40,
                "SessionToken": "t" * 40,
                "Expiration": "0001-01-01T00:00:00+14:00",
            }
        ),
    ],
)
def test_forged_times_are_token_errors(token: str) -> None:
    res = _run(token)
    assert res.code == 201 and "ran" not in res.out, res.err
    assert run_xtok(["inspect", "-"], aws_env("http://127.0.0.1:9"), stdin=token).code == 201


@pytest.mark.parametrize(
    "fields",
    [
        {"region": "evil.example/#"},  # the fetch's host is secretsmanager.REGION.amazonaws.com
        {"region": "us-east-1\r\nX-Injected: 1"},
        {"k": "ASIA\r\nX-Injected: 1"},  # the key id goes into the Authorization header
    ],
)
def test_token_fields_that_build_a_request_are_checked(fields: dict[str, str]) -> None:
    res = _run(_xtok({"k": "ASIAIOSFODNN7EXAMPLE", "s": "s" * 40, "t": "t" * 40, **fields}))
    assert res.code == 201 and "malformed" in res.err and "ran" not in res.out, res.err


@pytest.mark.parametrize("url", ["localhost:4566", "127.0.0.1:4566", "ftp://h/", "http://"])
def test_endpoint_url_without_scheme_is_a_usage_error(url: str) -> None:
    token = _xtok({"k": "ASIAIOSFODNN7EXAMPLE", "s": "s" * 40, "t": "t" * 40})
    res = _run(token, "--endpoint-url", url)
    assert res.code == 200 and "is not an http(s) URL" in res.err, res.err
    env = {**aws_env("http://127.0.0.1:9"), "AWS_ENDPOINT_URL": url, "XTOK_TOKEN": token}
    res = run_xtok(["run", "--secret", "A=b/c", "--", "true"], env)
    assert res.code == 200 and "is not an http(s) URL" in res.err, res.err
    assert run_xtok(["secret", "ls", "--endpoint-url", url], env).code == 200


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


def _payloads(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with any of its fields replaced by arbitrary JSON, or dropped."""
    return st.fixed_dictionaries(
        {},
        optional={k: st.just(v) | _json | st.integers(-(10**30), 10**30) for k, v in base.items()},
    )


@settings(max_examples=300, deadline=None)
@given(
    request=_payloads(GOOD_REQUEST),
    token=_payloads(
        {
            "kind": "x",
            "iat": 1,
            "exp": 2,
            "name": "n",
            "scope": {},
            "region": "r",
            "k": "ASIAIOSFODNN7EXAMPLE",
            "s": "s",
            "t": "t",
        }
    ),
    sealed=_payloads({"id": "0123456789abcdef", "d": PUB, "ct": PUB}),
    raw=st.text(max_size=40),
)
def test_no_input_is_an_internal_error(
    request: dict[str, Any], token: dict[str, Any], sealed: dict[str, Any], raw: str
) -> None:
    """Every parser answers any input with a value or an xtok error, never another exception."""
    attempts = [
        lambda: RequestCode.parse(armor.encode("xtokr", 1, request)),
        lambda: tokens.parse(armor.encode("xtok", 1, token)),
        lambda: tokens.parse(json.dumps({"Credentials": token})),
        lambda: SealedToken.parse(armor.encode("xtoks", 1, sealed)),
        lambda: tokens.parse(raw),
        lambda: RequestCode.parse(raw),
    ]
    for attempt in attempts:
        with contextlib.suppress(Error):
            attempt()


def test_oversize_secret_shows_aws_reason(xtok_server: DevServer) -> None:
    """AWS takes at most 65,536 bytes; the refusal is AWS's own, not an internal error."""
    env = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    res = run_xtok(["secret", "put", "hostile/oversize"], env, stdin=b"v" * 65_537)
    assert res.code == 207, res.err
    assert "The secret value is larger than 65,536 bytes" in res.err


def test_low_order_public_key_is_refused_before_minting() -> None:
    code = request_code(pub=armor.b64e(b"\0" * 32).replace("-", "+").replace("_", "/") + "=")
    res = run_xtok(["approve", code, "--yes"], aws_env("http://127.0.0.1:9"))
    assert res.code == 201 and "request code content is malformed" in res.err, res.err


@pytest.mark.parametrize("content", [b"\xff\xfe not text", b"", b"xtok1.nonsense"])
def test_anything_sealed_to_the_key_is_a_token_error(tmp_path: Path, content: bytes) -> None:
    """HPKE's base mode lets anyone who has the request code seal to its key: what opens is
    checked like any other input."""
    from xtok.approval import seal
    from xtok.approval.ci import RunIdentity
    from xtok.refs import parse_ref

    request, ticket = seal.new_request(
        RunIdentity(), (parse_ref("A=a/b"),), 900, None, tmp_path / "s"
    )
    public = X25519PublicKey.from_public_bytes(request.public_key)
    info = seal._INFO + request.digest()  # the construction under test, fed raw bytes
    forged = seal.SealedToken(
        request.id, request.digest(), seal._SUITE.encrypt(content, public, info)
    )
    with pytest.raises(Error) as caught:
        seal.open_sealed(forged, ticket, tmp_path / "s")
    assert caught.value.exit_code == 201


def test_request_with_a_control_character_in_its_identity_is_a_usage_error(
    tmp_path: Path,
) -> None:
    env = {**aws_env("http://127.0.0.1:9"), "XTOK_STATE_DIR": str(tmp_path / "s")}
    res = run_xtok(["request", "--secret", "A=a/b", "--job", "deploy\x1b[2K"], env)
    assert res.code == 200 and "control or bidi character (\\x1b)" in res.err, res.err
    assert "\x1b" not in res.both and res.out == ""


def test_secret_metadata_written_by_another_caller_is_shown_escaped(
    xtok_server: DevServer,
) -> None:
    """A secret's description, tags and staging labels are written by whoever may update the
    secret (on AWS too, without a character rule): `xtok secret describe` and `ls` must not let
    them paint the reader's terminal."""
    import boto3

    env = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    sm = boto3.client(
        "secretsmanager",
        endpoint_url=xtok_server.url,
        region_name="us-east-1",
        aws_access_key_id=xtok_server.access_key_id,
        aws_secret_access_key=xtok_server.secret_access_key,
    )
    nasty = "".join(NASTY)
    sm.create_secret(Name="painted/desc", SecretString="x", Description=f"fine{nasty}")
    sm.put_secret_value(SecretId="painted/desc", SecretString="y", VersionStages=[f"L{nasty}"])
    outputs = [
        run_xtok(["secret", "describe", "painted/desc"], env),
        run_xtok(["secret", "ls", "--prefix", "painted/"], env),
    ]
    for res in outputs:
        assert res.code == 0, res.err
        assert not any(c in res.out for c in "\b\r\x1b\x9b\u202e\u2067\u200d\u2028")
    assert "fine\\x08" in outputs[0].out


@pytest.fixture
def not_aws() -> Iterator[str]:
    """A loopback web server that answers every request with 200 and a page, as a proxy's
    login page or a mistyped --endpoint-url does."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html><body>Please log in to the proxy</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_answer_that_is_not_aws_fails_closed(not_aws: str) -> None:
    """A 200 answer without a secret value must never start the command (with an empty
    secret), and a mint answer without credentials is an AWS error, not an internal one."""
    token = _xtok({"k": "ASIAIOSFODNN7EXAMPLE", "s": "s" * 40, "t": "t" * 40})
    ran = _run(token, "--endpoint-url", not_aws)
    assert ran.code == 207 and "ran" not in ran.out, ran.err
    assert "not an AWS answer" in ran.err
    minted = run_xtok(["token", "--duration", "15m", "--endpoint-url", not_aws], aws_env(not_aws))
    assert minted.code == 207 and "not an AWS answer" in minted.err, minted.err


_DEEP = '{"a":' + "[" * 100_000 + "]" * 100_000 + "}"  # nested past Python's recursion limit


def _armored(kind: str, body: str) -> str:
    text = f"{kind}1." + armor.b64e(body.encode())
    return f"{text}.{armor._checksum(text)}"


@pytest.mark.parametrize(
    "text",
    [_armored("xtokr", _DEEP), _armored("xtok", _DEEP), _armored("xtoks", _DEEP), _DEEP],
    ids=["request-code", "token", "sealed-token", "json-token"],
)
def test_deeply_nested_input_is_a_token_error(text: str) -> None:
    """JSON nested deeper than the parser recurses is malformed input, not an internal error."""
    res = run_xtok(["inspect", "-"], aws_env("http://127.0.0.1:9"), stdin=text)
    assert res.code == 201, res.err


def test_a_deeply_nested_json_secret_is_not_an_object(xtok_server: DevServer) -> None:
    env = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    assert run_xtok(["secret", "put", "hostile/deep"], env, stdin=_DEEP[:60_000]).code == 0
    token = run_xtok(["token", "--duration", "15m"], env)
    assert token.code == 0, token.err
    res = run_xtok(
        ["run", "--secret", "A=hostile/deep#a", "--", "echo", "ran"],
        {**env, "XTOK_TOKEN": token.out.strip()},
    )
    assert res.code == 200 and "is not a JSON object" in res.err and "ran" not in res.out
