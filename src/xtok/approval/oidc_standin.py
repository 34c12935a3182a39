"""A loopback stand-in for a CI's OIDC issuer (discovery + JWKS + keys) and for GitHub's
ID-token request endpoint (ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN), for `xtok demo` and the tests.

It plays GitHub's and GitLab's issuers where they cannot be reached: it serves what they publish
(OIDC discovery, a JWKS with an RS256 key by `kid`) and signs tokens with PyJWT; every check on
them is xtok's real code. Never trust it: add its URL to trusted issuers only in a demo or test.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLAIMS = {
    "sub": "repo:acme/app:ref:refs/heads/main",
    "repository": "acme/app",
    "repository_owner": "acme",
    "ref": "refs/heads/main",
    "sha": "0badc0ffee",
    "workflow": "deploy",
    "run_id": "77",
    "actor": "octocat",
}


class Issuer:
    """An OIDC issuer on 127.0.0.1 with one published key (`kid` "k1") and one unpublished."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.request_bearer = secrets.token_urlsafe(16)
        self.claims: dict[str, Any] = dict(CLAIMS)
        self.requests = 0
        self.lifetime = 600  # seconds; GitHub's tokens live 300
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def token(
        self,
        aud: str | list[str],
        *,
        iss: str | None = None,
        exp: float | None = None,
        kid: str = "k1",
        key: Any = None,
        alg: str = "RS256",
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            **self.claims,
            "iss": iss or self.url,
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": int(exp if exp is not None else now + self.lifetime),
            "jti": secrets.token_hex(8),
            **claims,
        }
        return jwt.encode(payload, key or self.key, algorithm=alg, headers={"kid": kid})

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def github_env(self) -> dict[str, str]:
        """The variables a GitHub runner sets for a job with `id-token: write`."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/github-token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_bearer,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                issuer.requests += 1
                parts = urllib.parse.urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    self._json({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})
                elif parts.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    self._json({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
                elif parts.path == "/github-token":
                    auth = self.headers.get("Authorization", "")
                    if auth != f"bearer {issuer.request_bearer}":
                        self._json({"message": "bad token"}, 401)
                        return
                    aud = urllib.parse.parse_qs(parts.query).get("audience", [""])[0]
                    self._json({"count": 1, "value": issuer.token(aud)})
                else:
                    self._json({}, 404)

            def _json(self, body: object, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    @contextmanager
    def running(self) -> Iterator[Issuer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
