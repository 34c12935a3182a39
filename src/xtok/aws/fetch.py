"""The fetch step: read the requested secrets with the token's credentials, and nothing else."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Sequence

from xtok.aws.session import (
    AwsConfig,
    aws_errors,
    check_endpoint_url,
    error_for,
    not_aws,
    region_of,
    session,
)
from xtok.errors import AccessDenied, ConfigError, UsageError
from xtok.refs import SecretRef
from xtok.sensitive import Secret
from xtok.tokens.token import Credentials


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
    reader = _Reader(creds, config)
    cache: dict[str, Secret] = {}
    out = []
    for ref in refs:
        if ref.name not in cache:
            with aws_errors(f"cannot read secret {ref.name!r} (for {ref.env})"):
                cache[ref.name] = reader.get(ref.name, f"{ref.name!r} (for {ref.env})")
        out.append((ref, _select(ref, cache[ref.name])))
    return out


class _Reader:
    """GetSecretValue, signed by botocore's SigV4 signer and sent by botocore's HTTP session.

    The fetch step runs on every pipeline start, so it skips building a full botocore client
    (loading the service model and endpoint rules costs more than the call itself). The JSON
    1.1 request and answer of this one operation are small and stable.
    """

    def __init__(self, creds: Credentials, config: AwsConfig) -> None:
        from botocore.credentials import Credentials as Keys
        from botocore.httpsession import URLLib3Session

        region = (
            config.region
            or creds.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or region_of(session(config))  # the profile's region, from ~/.aws/config
        )
        if not region:
            raise ConfigError("no AWS region for the fetch", tip="pass --region or set AWS_REGION")
        self.region: str = region
        self.url = _endpoint(config, self.region)
        self.keys = Keys(
            creds.access_key_id,
            creds.secret_access_key.reveal_text(),
            creds.session_token.reveal_text(),
        )
        self.http = URLLib3Session(
            verify=os.environ.get("AWS_CA_BUNDLE") or True,  # type: ignore[arg-type] # a path works
            proxies=_proxies(self.url),
            timeout=30,
            # As botocore's own clients do: without TCP_NODELAY each request waits out the
            # peer's delayed ACK (about 40 ms).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # type: ignore[list-item]
        )

    def get(self, name: str, what: str) -> Secret:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        body = json.dumps({"SecretId": name}).encode()
        for attempt in range(3):
            request = AWSRequest(
                "POST",
                self.url,
                data=body,
                headers={
                    "Content-Type": "application/x-amz-json-1.1",
                    "X-Amz-Target": "secretsmanager.GetSecretValue",
                },
            )
            SigV4Auth(self.keys, "secretsmanager", self.region).add_auth(request)
            response = self.http.send(request.prepare())
            if response.status_code < 500 or attempt == 2:
                break
            time.sleep(0.2 * 2**attempt)  # a server error may pass: retry a little
        try:
            data = json.loads(response.content or b"{}")
        except (ValueError, RecursionError):
            data = {}
        if response.status_code != 200 or not isinstance(data, dict):
            code = (
                str(
                    data.get("__type")
                    or response.headers.get("x-amzn-ErrorType")
                    or response.status_code
                )
                .split("#")[-1]
                .split(":")[0]
            )
            message = str(data.get("message") or data.get("Message") or "")
            raise error_for(code, message, f"cannot read secret {what}", with_token=True)
        if isinstance(data.get("SecretString"), str):
            return Secret(data["SecretString"])
        try:  # an answer with no value is not AWS's: never run the command with an empty one
            return Secret(base64.b64decode(data["SecretBinary"], validate=True))
        except (KeyError, TypeError, ValueError):
            raise not_aws(f"cannot read secret {what}") from None


def _endpoint(config: AwsConfig, region: str) -> str:
    url = (
        config.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    if url:
        return check_endpoint_url(url).rstrip("/") + "/"
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://secretsmanager.{region}.{suffix}/"


def _proxies(url: str) -> dict[str, str]:
    import urllib.request

    if urllib.request.proxy_bypass(url.split("/")[2]):
        return {}
    return {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https")}


def _select(ref: SecretRef, value: Secret) -> Secret:
    if ref.json_key is not None:
        try:
            doc = json.loads(value.reveal())
        except (ValueError, RecursionError):  # nested too deeply to be an object of keys
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
