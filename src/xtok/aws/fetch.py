"""The fetch step: read the requested secrets with the token's credentials, and nothing else.

It runs at the start of every pipeline step, so its usual case skips botocore (whose import
costs more than the request): GetSecretValue is signed by `xtok.aws.sign`, sent by
`xtok.aws.transport` to the endpoint `xtok.aws.endpoints` resolves, and retried as botocore's
standard mode would (`xtok.aws.retry`); several secrets are read concurrently. Whatever needs
more of botocore's configuration goes through a botocore client instead: a named profile or an
AWS config file with settings `xtok.aws.settings` does not read, a proxy, FIPS or dual-stack
endpoints.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from xtok import __version__
from xtok.aws import endpoints, retry, settings, transport
from xtok.aws.session import (
    AwsConfig,
    aws_errors,
    check_endpoint_url,
    error_for,
    session,
    shown_url,
)
from xtok.aws.sign import sign
from xtok.errors import (
    AccessDenied,
    AwsError,
    ConfigError,
    Error,
    NetworkError,
    TokenError,
    UsageError,
)
from xtok.refs import SecretRef
from xtok.sensitive import Secret
from xtok.tokens.token import TIP_RECOPY, Credentials

_CONNECT_TIMEOUT = 5
_READ_TIMEOUT = 30
_MAX_CONCURRENCY = 8
_TIP_NETWORK = "check --endpoint-url / AWS_ENDPOINT_URL and the network"
_TIP_TLS = "the endpoint's certificate is not trusted: set AWS_CA_BUNDLE to its CA's PEM file"
_TIP_REGION = "pass --region or set AWS_REGION"
_PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")


def fetch(
    refs: Sequence[SecretRef], creds: Credentials, config: AwsConfig
) -> list[tuple[SecretRef, Secret]]:
    """Every requested value, or an error naming the first secret that could not be read."""
    if creds.scope is not None:
        for ref in refs:
            if not creds.scope.allows(ref.name):
                raise AccessDenied(
                    f"the token's scope ({creds.scope.describe()}) does not include secret "
                    f"{ref.name!r}",
                    tip="ask the approver for a token that names this secret",
                )
    first = {ref.name: ref for ref in reversed(refs)}  # each name read once, for its first ref
    names = [ref.name for ref in refs if first[ref.name] is ref]
    reader = _reader(creds, config)
    whats = [f"{name!r} (for {first[name].env})" for name in names]
    values = dict(zip(names, _read_all(reader, names, whats), strict=True))
    return [(ref, _select(ref, values[ref.name])) for ref in refs]


class _Reader(Protocol):
    def get(self, name: str, what: str) -> Secret: ...


def _read_all(reader: _Reader, names: list[str], whats: list[str]) -> list[Secret]:
    if len(names) == 1:
        return [reader.get(names[0], whats[0])]
    from concurrent.futures import ThreadPoolExecutor

    def attempt(i: int) -> Secret | Error:
        try:
            return reader.get(names[i], whats[i])
        except Error as exc:
            return exc

    with ThreadPoolExecutor(min(len(names), _MAX_CONCURRENCY)) as pool:
        results = list(pool.map(attempt, range(len(names))))
    for result in results:  # the first failure in the order asked for
        if isinstance(result, Error):
            raise result
    return [r for r in results if isinstance(r, Secret)]


def _reader(creds: Credentials, config: AwsConfig) -> _Reader:
    for part in (creds.secret_access_key.reveal_text(), creds.session_token.reveal_text()):
        if not (part.isascii() and part.isprintable()) or " " in part:
            raise TokenError(
                "the token's credentials hold characters AWS never issues", tip=TIP_RECOPY
            )
    env = os.environ
    region = config.region or creds.region or env.get("AWS_REGION")
    if config.endpoint_url:
        check_endpoint_url(config.endpoint_url)
    where = settings.read(config.profile)
    if where is None or any(env.get(v) or env.get(v.upper()) for v in _PROXY_VARIABLES):
        # Settings only botocore reads faithfully; it also finds the region when none is set.
        return _BotocoreReader(creds, config, _checked(region or env.get("AWS_DEFAULT_REGION")))
    region = _checked(region or where.region)
    if region is None:
        raise ConfigError("no AWS region for the fetch", tip=_TIP_REGION)
    url = config.endpoint_url or where.endpoint_url
    if url:
        return _HttpReader(creds, region, check_endpoint_url(url), where.ca_bundle)
    url = endpoints.resolve(region, fips=where.fips, dualstack=where.dualstack)
    if url is None:
        return _BotocoreReader(creds, config, region)
    return _HttpReader(creds, region, url, where.ca_bundle)


def _checked(region: str | None) -> str | None:
    if region is not None and not endpoints.REGION.match(region):
        # Not shown: it may come from a forged token, and a terminal must not render it.
        raise ConfigError("invalid AWS region (not a DNS label)", tip=_TIP_REGION)
    return region


class _HttpReader:
    """GetSecretValue as botocore sends it: a JSON 1.1 request and answer, small and stable."""

    def __init__(self, creds: Credentials, region: str, url: str, ca_bundle: str | None) -> None:
        self.creds, self.region, self.url = creds, region, url.rstrip("/") + "/"
        self.ca_bundle = ca_bundle
        parts = urlsplit(self.url)
        self.https = parts.scheme == "https"
        self.host, self.port, self.path = parts.hostname or "", parts.port, parts.path

    def get(self, name: str, what: str) -> Secret:
        body = json.dumps({"SecretId": name}).encode()
        attempt = 0
        while True:
            attempt += 1
            try:
                status, retry_after, data = self._send(body)
            except OSError as exc:  # refused, reset, dropped, timed out, TLS, not HTTP
                if retry.should_retry(attempt, None, None):
                    time.sleep(retry.delay(attempt, throttled=False))
                    continue
                failure = type(exc).__name__
                raise NetworkError(
                    f"cannot read secret {what}: no answer from {shown_url(self.url)} ({failure})",
                    tip=_TIP_TLS if failure.startswith("SSL") else _TIP_NETWORK,
                ) from None
            if status == 200:
                return _value_of(data, what)
            code, message = _error_of(status, data)
            if retry.should_retry(attempt, status, code):
                throttled = retry.is_throttling(status, code)
                time.sleep(retry.delay(attempt, throttled, retry_after))
                continue
            raise error_for(code, message, f"cannot read secret {what}", with_token=True)

    def _send(self, body: bytes) -> tuple[int, str | None, bytes]:
        headers = sign(
            "POST",
            self.url,
            {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "secretsmanager.GetSecretValue",
            },
            body,
            access_key=self.creds.access_key_id,
            secret_key=self.creds.secret_access_key.reveal_text(),
            session_token=self.creds.session_token.reveal_text() or None,
            region=self.region,
            service="secretsmanager",
            when=datetime.now(UTC),
        )
        headers["User-Agent"] = f"xtok/{__version__}"
        response = transport.post(
            self.host,
            self.port or (443 if self.https else 80),
            self.path,
            headers,
            body,
            tls=_tls_context(self.ca_bundle) if self.https else None,
            connect_timeout=_CONNECT_TIMEOUT,
            read_timeout=_READ_TIMEOUT,
        )
        return response.status, response.headers.get("x-amz-retry-after"), bytes(response.body)


@functools.cache  # loading the CA file costs more than a request: once per process
def _tls_context(cafile: str | None) -> Any:
    """Certificates as botocore verifies them: AWS_CA_BUNDLE or the profile's ca_bundle, else
    certifi's, else botocore's own."""
    import ssl

    if not cafile:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:
            from importlib.util import find_spec

            spec = find_spec("botocore")
            locations = spec.submodule_search_locations if spec else None
            cafile = os.path.join(locations[0], "cacert.pem") if locations else None
    return ssl.create_default_context(cafile=cafile)


def _error_of(status: int, data: bytes) -> tuple[str, str]:
    """The error code and message as botocore's JSON parser reads them."""
    try:
        doc = json.loads(data) if data else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    code = str(doc.get("__type") or status).split(":", 1)[0].rsplit("#", 1)[-1]
    return code, str(doc.get("message") or doc.get("Message") or "")


def _value_of(data: bytes, what: str) -> Secret:
    try:
        doc = json.loads(data)
        if isinstance(doc.get("SecretString"), str):
            return Secret(doc["SecretString"])
        return Secret(base64.b64decode(doc.get("SecretBinary") or ""))
    except (ValueError, AttributeError):
        raise AwsError(
            f"cannot read secret {what}: the endpoint's answer is not readable"
        ) from None


class _BotocoreReader:
    """GetSecretValue through a botocore client, with the token's credentials."""

    def __init__(self, creds: Credentials, config: AwsConfig, region: str | None) -> None:
        from botocore.config import Config

        with aws_errors("cannot create the Secrets Manager client"):
            try:
                self.client: Any = session(config).create_client(
                    "secretsmanager",
                    region_name=region,
                    endpoint_url=config.endpoint_url,
                    aws_access_key_id=creds.access_key_id,
                    aws_secret_access_key=creds.secret_access_key.reveal_text(),
                    aws_session_token=creds.session_token.reveal_text() or None,
                    config=Config(
                        connect_timeout=_CONNECT_TIMEOUT,
                        read_timeout=_READ_TIMEOUT,
                        retries={"total_max_attempts": retry.MAX_ATTEMPTS, "mode": "standard"},
                    ),
                )
            except ValueError:  # botocore's "Invalid endpoint: …"
                raise UsageError(
                    "the endpoint URL is not valid", tip="e.g. --endpoint-url http://127.0.0.1:4566"
                ) from None

    def get(self, name: str, what: str) -> Secret:
        with aws_errors(f"cannot read secret {what}"):
            answer = self.client.get_secret_value(SecretId=name)
        if isinstance(answer.get("SecretString"), str):
            return Secret(answer["SecretString"])
        return Secret(answer.get("SecretBinary") or b"")


def _select(ref: SecretRef, value: Secret) -> Secret:
    if ref.json_key is not None:
        try:
            doc = json.loads(value.reveal())
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise UsageError(
                f"secret {ref.name!r} is not a JSON object, so #{ref.json_key} "
                "cannot select from it"
            )
        if ref.json_key not in doc:
            raise UsageError(f"secret {ref.name!r} has no JSON key {ref.json_key!r}")
        item = doc[ref.json_key]
        value = Secret(item if isinstance(item, str) else json.dumps(item))
    if not ref.as_file:
        try:
            text = value.reveal_text()
        except UnicodeDecodeError:
            text = "\0"
        if "\0" in text:
            raise UsageError(
                f"secret {ref.label!r} is binary and cannot go into an environment variable",
                tip=f"deliver it as a file: --secret-file {ref.env}={ref.name}",
            )
    return value
