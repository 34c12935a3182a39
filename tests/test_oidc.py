"""Proven requests: xtok's OIDC verification against a loopback issuer stand-in (discovery, JWKS,
test keys) and GitHub's ID-token endpoint stand-in. Every forgery is refused but the valid one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from xtok.approval import oidc, seal
from xtok.approval.ci import RunIdentity
from xtok.approval.oidc_standin import Issuer
from xtok.approval.request import RequestCode
from xtok.refs import parse_ref


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer().running() as running:
        yield running


@pytest.fixture
def trust(issuer: Issuer) -> oidc.Trust:
    return oidc.Trust(issuers=(*oidc.DEFAULT_ISSUERS, issuer.url))


def new_request(tmp_path: Path) -> RequestCode:
    ref = parse_ref("DB=prod/db")
    identity = RunIdentity("github-actions", "acme/app")
    return seal.new_request_in_memory(identity, (ref,), 900, None)[0]


@pytest.fixture
def request_code(tmp_path: Path) -> RequestCode:
    return new_request(tmp_path)


def test_valid_github_token_from_the_request_endpoint_is_bound_to_the_key(
    issuer: Issuer, trust: oidc.Trust, request_code: RequestCode
) -> None:
    token = oidc.obtain(request_code, issuer.github_env())
    assert token is not None
    proof = oidc.verify(token, request_code, trust)
    assert proof.binding == "key"
    assert proof.issuer == issuer.url
    assert ("repository", "acme/app") in proof.shown()
    assert ("ref", "refs/heads/main") in proof.shown()


def test_github_endpoint_refuses_a_wrong_bearer(issuer: Issuer, request_code: RequestCode) -> None:
    env = {**issuer.github_env(), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "wrong"}
    with pytest.raises(oidc.NetworkError):
        oidc.obtain(request_code, env)


def test_fixed_audience_token_proves_its_first_key_and_a_replay_is_refused(
    issuer: Issuer, trust: oidc.Trust, tmp_path: Path
) -> None:
    seen = oidc.FileSeen(tmp_path / "seen.json")
    token = issuer.token("xtok")
    first, second = new_request(tmp_path / "a"), new_request(tmp_path / "b")
    assert oidc.verify(token, first, trust, seen).binding == "first-use"
    assert oidc.verify(token, first, trust, seen).binding == "first-use"  # same key: fine
    with pytest.raises(oidc.ProofRefused, match="replay"):
        oidc.verify(token, second, trust, seen)
    assert (tmp_path / "seen.json").stat().st_mode & 0o777 == 0o600


def refused(token: str, request: RequestCode, trust: oidc.Trust, match: str) -> None:
    with pytest.raises(oidc.ProofRefused, match=match) as info:
        oidc.verify(token, request, trust)
    assert token not in info.value.message


def test_expired(issuer: Issuer, trust: oidc.Trust, request_code: RequestCode) -> None:
    aud = oidc.binding_audience(request_code)
    refused(issuer.token(aud, exp=time.time() - 120), request_code, trust, "expired")


def test_wrong_issuer(issuer: Issuer, request_code: RequestCode) -> None:
    aud = oidc.binding_audience(request_code)
    only_defaults = oidc.Trust()
    refused(issuer.token(aud), request_code, only_defaults, "untrusted issuer")


def test_wrong_audience(issuer: Issuer, trust: oidc.Trust, request_code: RequestCode) -> None:
    refused(issuer.token("sts.amazonaws.com"), request_code, trust, "another audience")


def test_wrong_binding(
    issuer: Issuer, trust: oidc.Trust, request_code: RequestCode, tmp_path: Path
) -> None:
    other = new_request(tmp_path / "other")
    token = issuer.token(oidc.binding_audience(other))
    refused(token, request_code, trust, "another request's key")


def test_unknown_key_id(issuer: Issuer, trust: oidc.Trust, request_code: RequestCode) -> None:
    aud = oidc.binding_audience(request_code)
    token = issuer.token(aud, kid="k2", key=issuer.other)
    refused(token, request_code, trust, "does not publish")


def test_published_kid_with_another_key(
    issuer: Issuer, trust: oidc.Trust, request_code: RequestCode
) -> None:
    aud = oidc.binding_audience(request_code)
    refused(issuer.token(aud, key=issuer.other), request_code, trust, "does not verify")


def test_alg_none(issuer: Issuer, trust: oidc.Trust, request_code: RequestCode) -> None:
    aud = oidc.binding_audience(request_code)
    now = int(time.time())
    payload = {**issuer.claims, "iss": issuer.url, "aud": aud, "iat": now, "exp": now + 600}
    token = jwt.encode(payload, None, algorithm="none", headers={"kid": "k1"})
    refused(token, request_code, trust, "algorithm 'none'")


def test_hs256_keyed_with_the_public_key(
    issuer: Issuer, trust: oidc.Trust, request_code: RequestCode
) -> None:
    """The classic confusion: an HMAC 'signature' keyed with the published RSA key (built by
    hand, since PyJWT itself refuses to make one)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = {
        **issuer.claims,
        "iss": issuer.url,
        "aud": oidc.binding_audience(request_code),
        "iat": now,
        "exp": now + 600,
    }
    body = b64(json.dumps(payload).encode())
    mac = hmac.new(issuer.public_pem(), header + b"." + body, hashlib.sha256).digest()
    token = (header + b"." + body + b"." + b64(mac)).decode()
    refused(token, request_code, trust, "algorithm 'HS256'")


def test_malformed(trust: oidc.Trust, request_code: RequestCode) -> None:
    refused("not.a.jwt", request_code, trust, "malformed")


def test_required_claims_from_approver_toml(
    issuer: Issuer, request_code: RequestCode, tmp_path: Path
) -> None:
    config = tmp_path / "approver.toml"
    config.write_text(
        f'[oidc]\nissuers = ["{issuer.url}"]\n'
        f'[[oidc.require]]\niss = "{issuer.url}"\nrepository_owner = "acme"\n'
        'ref = "refs/heads/main"\n'
    )
    trust = oidc.Trust.load(config)
    aud = oidc.binding_audience(request_code)
    assert oidc.verify(issuer.token(aud), request_code, trust).binding == "key"
    with pytest.raises(oidc.ProofRefused, match=r"ref is 'refs/heads/dev', required"):
        oidc.verify(issuer.token(aud, ref="refs/heads/dev"), request_code, trust)


def test_hostile_claim_values_are_escaped_in_refusals(
    issuer: Issuer, request_code: RequestCode
) -> None:
    trust = oidc.Trust(issuers=(issuer.url,), rules=({"ref": "refs/heads/main"},))
    aud = oidc.binding_audience(request_code)
    with pytest.raises(oidc.ProofRefused) as info:
        oidc.verify(issuer.token(aud, ref="x\x1b[31m\u202eevil"), request_code, trust)
    assert "\x1b" not in info.value.message and "\u202e" not in info.value.message


def test_discovery_and_keys_are_cached(
    issuer: Issuer, trust: oidc.Trust, request_code: RequestCode
) -> None:
    aud = oidc.binding_audience(request_code)
    oidc.verify(issuer.token(aud), request_code, trust)
    before = issuer.requests
    for _ in range(3):
        oidc.verify(issuer.token(aud), request_code, trust)
    assert issuer.requests == before
