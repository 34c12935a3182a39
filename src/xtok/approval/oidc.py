"""Requests proven by the CI's own identity: OIDC ID tokens (JWTs), obtained and verified.

A run attaches its CI's ID token to its request code. Where the CI lets the job choose the
audience (GitHub Actions), the audience is `xtok:<request digest>`: the JWT proves this request's
key and no other. Where the audience is fixed by the pipeline file (GitLab `id_tokens`, Jenkins'
OIDC provider plugin), a JWT may prove one request key only: the first key it is seen with wins,
and the approver's xtok (and the relay) refuse it for any other key.

Verification (PyJWT; no JOSE code here): the issuer must be trusted, its keys come from OIDC
discovery + JWKS (cached per process), only asymmetric algorithms are accepted (so neither
`alg: none` nor HS256 keyed with a public key passes), `exp` and `iat` are required.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt

from xtok.approval.request import RequestCode
from xtok.errors import AccessDenied, ConfigError, NetworkError
from xtok.loopback import is_loopback
from xtok.regular_file import read_regular, replace_regular

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
DEFAULT_ISSUERS = (GITHUB_ISSUER, GITLAB_ISSUER)
DEFAULT_AUDIENCE = "xtok"
AUDIENCE_PREFIX = "xtok:"
TOKEN_ENV = "XTOK_OIDC_TOKEN"  # noqa: S105 - a variable name: GitLab id_tokens / Jenkins binding
CONFIG_ENV = "XTOK_APPROVER_CONFIG"
GITHUB_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 - a variable name
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
LEEWAY = 30
_TIMEOUT = 10
_TIP_CONFIG = f"see the README, section `approver.toml` (${CONFIG_ENV})"

# Claims worth showing, in this order (GitHub Actions, then GitLab CI, then generic).
SHOWN_CLAIMS = (
    "repository",
    "repository_owner",
    "project_path",
    "namespace_path",
    "workflow_ref",
    "job_workflow_ref",
    "environment",
    "ref",
    "ref_type",
    "ref_protected",
    "sha",
    "run_id",
    "run_attempt",
    "pipeline_id",
    "job_id",
    "actor",
    "user_login",
    "event_name",
    "sub",
)


class ProofRefused(AccessDenied):
    """The request's OIDC proof does not hold, or does not meet the approver's rules."""


class ProofReplayed(ProofRefused):
    """A fixed-audience ID token already proved another request's key."""


@dataclass(frozen=True)
class Trust:
    """Whom an approver (or the relay) believes, and what an approver requires."""

    issuers: tuple[str, ...] = DEFAULT_ISSUERS
    audience: str = DEFAULT_AUDIENCE
    rules: tuple[Mapping[str, str], ...] = ()
    require_proof: bool = False

    @classmethod
    def load(cls, path: Path | None = None) -> Trust:
        """Read `approver.toml` (absent: the defaults).

        [oidc]
        issuers = ["https://gitlab.example.com"]   # trusted in addition to github's and gitlab's
        audience = "xtok"                          # the fixed audience of GitLab / Jenkins tokens
        require_proof = true                       # refuse unproven requests
        [[oidc.require]]                           # a proof must match one rule (glob values)
        iss = "https://token.actions.githubusercontent.com"
        repository_owner = "acme"
        ref = "refs/heads/main"
        """
        path = path or default_config_path()
        try:
            data = tomllib.loads(read_regular(path, what="approver config").decode())
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}", tip=_TIP_CONFIG) from None
        section = data.get("oidc", {})
        try:
            extra = tuple(str(i).rstrip("/") for i in section.get("issuers", ()))
            rules = tuple(
                {str(k): str(v) for k, v in dict(rule).items()}
                for rule in section.get("require", ())
            )
            return cls(
                issuers=tuple(dict.fromkeys(DEFAULT_ISSUERS + extra)),
                audience=str(section.get("audience", DEFAULT_AUDIENCE)),
                rules=rules,
                require_proof=bool(section.get("require_proof", False)),
            )
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: [oidc] is malformed", tip=_TIP_CONFIG) from None


def default_config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "xtok" / "approver.toml"


class SeenStore(Protocol):
    def claim(self, token_hash: str, digest: str, expires: int) -> bool:
        """Record that the JWT `token_hash` proves `digest`; False if it proved another."""


@dataclass(frozen=True)
class Proof:
    """A verified ID token: its issuer, its claims, and how it is bound to the request."""

    issuer: str
    claims: Mapping[str, Any] = field(repr=False)
    binding: str  # "key" (audience carries the digest) or "first-use" (fixed audience)

    def shown(self) -> list[tuple[str, str]]:
        return [(k, str(self.claims[k])) for k in SHOWN_CLAIMS if k in self.claims]


def binding_audience(request: RequestCode) -> str:
    """The audience a per-request ID token must carry: it names this request's key."""
    return AUDIENCE_PREFIX + request.digest().hex()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


def verify(token: str, request: RequestCode, trust: Trust, seen: SeenStore | None = None) -> Proof:
    """Check `token` proves `request` under `trust`; raise ProofRefused saying why not."""
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ProofRefused("the request's OIDC token is malformed") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise ProofRefused(f"the request's OIDC token uses algorithm {_show(alg)}: refused")
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or issuer.rstrip("/") not in trust.issuers:
        raise ProofRefused(
            f"the request's OIDC token comes from an untrusted issuer {_show(issuer)}",
            tip=f"trust self-hosted issuers in approver.toml ({_TIP_CONFIG})",
        )
    key = _signing_key(issuer, token)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            issuer=issuer,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise ProofRefused("the request's OIDC token has expired") from None
    except jwt.PyJWTError as exc:
        raise ProofRefused(f"the request's OIDC token does not verify ({_reason(exc)})") from None
    binding = _check_binding(token, claims, request, trust, seen)
    proof = Proof(issuer, claims, binding)
    check_rules(proof, trust)
    return proof


def _check_binding(
    token: str,
    claims: Mapping[str, Any],
    request: RequestCode,
    trust: Trust,
    seen: SeenStore | None,
) -> str:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else [a for a in aud or () if isinstance(a, str)]
    if binding_audience(request) in audiences:
        return "key"
    if any(a.startswith(AUDIENCE_PREFIX) for a in audiences):
        raise ProofRefused("the request's OIDC token is bound to another request's key")
    if trust.audience not in audiences:
        raise ProofRefused(
            f"the request's OIDC token is for another audience {_show(', '.join(audiences))}",
            tip=f"the pipeline must ask for audience {trust.audience!r} (or set it in "
            "approver.toml)",
        )
    if seen is not None and not seen.claim(
        token_hash(token), request.digest().hex(), int(claims["exp"])
    ):
        raise ProofReplayed(
            "the request's OIDC token was already used to prove another request's key (a replay)",
            tip="the run must start a new job to get a new token",
        )
    return "first-use"


def check_rules(proof: Proof, trust: Trust) -> None:
    """Refuse a proof that matches none of the approver's `[[oidc.require]]` rules."""
    if not trust.rules:
        return
    claims = {**proof.claims, "iss": proof.issuer}
    misses = []
    for rule in trust.rules:
        missing = [
            f"{k} is {_show(claims.get(k))}, required {v!r}"
            for k, v in rule.items()
            if not fnmatch.fnmatchcase(str(claims.get(k, "")), v) or k not in claims
        ]
        if not missing:
            return
        misses.append("; ".join(missing))
    raise ProofRefused(
        f"the request's verified identity meets no approver rule: {misses[0]}",
        tip=f"check [[oidc.require]] in approver.toml ({_TIP_CONFIG})",
    )


_clients: dict[str, jwt.PyJWKClient] = {}


def _signing_key(issuer: str, token: str) -> Any:
    client = _clients.get(issuer)
    if client is None:
        config = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", issuer)
        if str(config.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
            raise ProofRefused(f"issuer {_show(issuer)} publishes another issuer name")
        jwks_uri = str(config.get("jwks_uri", ""))
        _check_url(jwks_uri, issuer)
        client = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=600, timeout=_TIMEOUT)
        _clients[issuer] = client
    try:
        return client.get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError:
        raise NetworkError(
            f"cannot fetch the signing keys of {_show(issuer)}", tip="check the network"
        ) from None
    except jwt.PyJWKClientError:
        raise ProofRefused(
            f"the request's OIDC token names a key that {_show(issuer)} does not publish"
        ) from None
    except jwt.PyJWTError as exc:
        raise ProofRefused(f"the request's OIDC token does not verify ({_reason(exc)})") from None


def _check_url(url: str, issuer: str) -> None:
    """HTTPS only, except on loopback (test stand-ins and local issuers)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise ProofRefused(f"issuer {_show(issuer)} is not served over HTTPS: refused")


def _get_json(url: str, issuer: str, headers: Mapping[str, str] | None = None) -> Any:
    _check_url(url, issuer)
    req = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - checked scheme
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:  # noqa: S310
            return json.loads(resp.read(1 << 20))
    except (OSError, ValueError) as exc:
        raise NetworkError(
            f"cannot read {_show(url)}: {type(exc).__name__}", tip="check the network"
        ) from None


def obtain(request: RequestCode, env: Mapping[str, str]) -> str | None:
    """The run's ID token for `request`: GitHub's with the binding audience, else the one the
    pipeline put in $XTOK_OIDC_TOKEN (GitLab `id_tokens`, Jenkins' OIDC plugin), else None."""
    if refreshable(env):
        url, bearer = env[GITHUB_REQUEST_URL], env[GITHUB_REQUEST_TOKEN]
        sep = "&" if "?" in url else "?"
        full = f"{url}{sep}audience={urllib.parse.quote(binding_audience(request), safe='')}"
        data = _get_json(full, "GitHub's ID-token endpoint", {"Authorization": f"bearer {bearer}"})
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise NetworkError(
                "GitHub's ID-token endpoint gave no token",
                tip="give the job `permissions: id-token: write`",
            )
        return value
    token = env.get(TOKEN_ENV, "").strip()
    return token or None


def expires_at(token: str) -> int | None:
    """The token's `exp`, unverified: only for scheduling a refresh, never for trusting it."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return int(exp) if isinstance(exp, int | float) else None


def refreshable(env: Mapping[str, str]) -> bool:
    """Whether `obtain` can mint a new token (GitHub's request endpoint) rather than reuse one
    the pipeline gave."""
    return bool(env.get(GITHUB_REQUEST_URL) and env.get(GITHUB_REQUEST_TOKEN))


class FileSeen:
    """The approver's memory of which key each fixed-audience JWT proved (0600 JSON)."""

    def __init__(self, path: Path | None = None) -> None:
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        self.path = path or Path(base) / "xtok" / "oidc-seen.json"

    def claim(self, token_hash: str, digest: str, expires: int) -> bool:
        try:
            entries = json.loads(read_regular(self.path, what="OIDC proof memory", follow=False))
        except (OSError, ValueError):
            entries = {}
        now = int(time.time())
        entries = {k: v for k, v in entries.items() if int(v[1]) > now - LEEWAY}
        previous = entries.get(token_hash)
        if previous is not None:
            return bool(previous[0] == digest)
        entries[token_hash] = [digest, expires]
        replace_regular(self.path, json.dumps(entries).encode(), what="OIDC proof memory")
        return True


def _show(value: object) -> str:
    """A hostile value, quoted and escaped (no control or bidi characters reach a terminal)."""
    text = str(value)[:120]
    return ascii(text)


def _reason(exc: Exception) -> str:
    return type(exc).__name__
