"""Answering a Jenkins build's pending `input` step over Jenkins' REST API.

Finds the step at `BUILD_URL/wfapi/pendingInputActions`, then POSTs the sealed token to
`BUILD_URL/input/ID/proceed` as the `json` form field. Authenticates with a user and API token
(JENKINS_USER_ID / JENKINS_API_TOKEN for JENKINS_URL only, or the host's ~/.netrc entry);
fetches a CSRF crumb only when Jenkins asks for one. The token never appears in a message.

The API token goes only to the build's own origin (scheme, host, port): a redirect elsewhere is
refused, not followed with the credentials, and plain http:// is refused unless the host is
loopback or the approver says `--insecure-http`, and never goes through a proxy in the clear.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import netrc
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from xtok.display import is_unsafe, shown
from xtok.errors import AccessDenied, ConfigError, NetworkError, NotFound, UsageError
from xtok.loopback import is_loopback

INPUT_ID = "XtokToken"
PARAMETER = "XTOK_TOKEN"
TIMEOUT = 30


def _auth_header(url: str) -> dict[str, str]:
    """Basic auth for `url`'s Jenkins. The API token in the environment is bound to
    JENKINS_URL, as a ~/.netrc entry is to its host: a build URL elsewhere (a pipeline can set
    BUILD_URL, and with it the approve line it prints) never gets it."""
    user, token = os.environ.get("JENKINS_USER_ID"), os.environ.get("JENKINS_API_TOKEN")
    if user and token:
        root = os.environ.get("JENKINS_URL", "")
        if not root:
            raise ConfigError(
                "JENKINS_API_TOKEN is sent only to JENKINS_URL, which is not set",
                tip="set JENKINS_URL to your Jenkins' root URL, e.g. https://jenkins.example/",
            )
        if _origin(root) != _origin(url):
            raise AccessDenied(
                f"the build URL is on {shown(_origin_text(url))}, not on JENKINS_URL "
                f"({shown(_origin_text(root))}): your API token is not sent there",
                tip="approve only builds of your own Jenkins; check where the approve line "
                "came from",
            )
    else:
        host = urllib.parse.urlsplit(url).hostname or ""
        try:
            entry = netrc.netrc().hosts.get(host)  # not its `default` entry: that fits any host
        except (FileNotFoundError, netrc.NetrcParseError):
            entry = None
        if entry is None:
            raise ConfigError(
                "no Jenkins credentials",
                tip="set JENKINS_USER_ID and JENKINS_API_TOKEN, or add the host to ~/.netrc",
            )
        user, token = entry[0], entry[2] or ""
    pair = base64.b64encode(f"{user}:{token}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follows redirects within the build's origin only: urllib would carry the Authorization
    header to any host a redirect names."""

    def __init__(self, origin: tuple[str, str, int | None]) -> None:
        self.origin = origin

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != self.origin:
            raise AccessDenied(
                f"Jenkins redirected to {shown(_origin_text(newurl))}, another origin than the "
                "build's: not sent the credentials there",
                tip="use the build URL Jenkins itself shows (its configured root URL)",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = -1
    return parts.scheme, (parts.hostname or ""), port


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"


def check_build_url(build_url: str, *, insecure_http: bool = False) -> None:
    """Refuse what is not a build URL, and plain http:// to a host that is not loopback."""
    parts = urllib.parse.urlsplit(build_url)
    if (
        parts.scheme not in ("http", "https")
        or "/job/" not in parts.path
        or not parts.hostname
        or any(is_unsafe(c) or c.isspace() for c in build_url)  # it is shown in messages
    ):
        raise UsageError(
            f"--jenkins {shown(build_url)!r} is not a Jenkins build URL",
            tip="e.g. https://jenkins.example/job/deploy/42/",
        )
    if parts.scheme == "http" and not (insecure_http or is_loopback(parts.hostname)):
        raise UsageError(
            "--jenkins over plain http:// would send your API token unencrypted",
            tip="use the https:// URL, or pass --insecure-http if you must",
        )
    _auth_header(build_url)  # credentials for exactly this Jenkins, or refuse before minting


class _Client:
    def __init__(self, build_url: str, *, insecure_http: bool = False) -> None:
        check_build_url(build_url, insecure_http=insecure_http)
        self.build = build_url.rstrip("/") + "/"
        self.root = self.build[: self.build.index("/job/") + 1]
        self.headers = _auth_header(build_url)
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            _SameOrigin(_origin(build_url)),
        ]
        if build_url.lower().startswith("http:"):
            # A proxy from http_proxy would get the API token in the clear (and reach its own
            # loopback, not ours); over https it only relays an encrypted tunnel.
            handlers.append(urllib.request.ProxyHandler({}))
        self.opener = urllib.request.build_opener(*handlers)

    def call(
        self,
        method: str,
        url: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        # The scheme is checked in __init__: http(s) only.
        request = urllib.request.Request(  # noqa: S310
            url, data=data, method=method, headers={**self.headers, **(headers or {})}
        )
        try:
            with self.opener.open(request, timeout=TIMEOUT) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NetworkError(
                f"cannot reach Jenkins at {self.root}: {reason}",
                tip="check the build URL and the network",
            ) from None

    def crumb(self) -> dict[str, str]:
        status, body = self.call("GET", self.root + "crumbIssuer/api/json")
        if status != 200:
            return {}
        try:
            data = json.loads(body)
            return {str(data["crumbRequestField"]): str(data["crumb"])}
        except (ValueError, RecursionError, KeyError, TypeError):
            raise NetworkError("Jenkins' crumbIssuer answer is not a crumb") from None


def _check(status: int, what: str) -> None:
    if status in (401, 403):
        raise AccessDenied(
            f"Jenkins refused {what} (HTTP {status})",
            tip="check the user and API token, and that you may submit this input",
        )
    if status == 404:
        raise NotFound(f"Jenkins has no {what} (HTTP 404)", tip="check the build URL")
    if status >= 400:
        raise NetworkError(f"Jenkins answered HTTP {status} to {what}")


def submit(
    build_url: str,
    token: str,
    *,
    input_id: str = INPUT_ID,
    parameter: str = PARAMETER,
    insecure_http: bool = False,
) -> str:
    """Submit `token` to the build's pending xtok input; return the input's id."""
    client = _Client(build_url, insecure_http=insecure_http)
    status, body = client.call("GET", client.build + "wfapi/pendingInputActions")
    _check(status, "pending inputs for this build")
    try:
        actions = json.loads(body)
        match = [a for a in actions if str(a.get("id", "")).lower() == input_id.lower()]
    except (ValueError, RecursionError, TypeError, AttributeError):
        raise NetworkError("Jenkins' pendingInputActions answer is not a list of inputs") from None
    if not match:
        raise NotFound(
            f"the build has no pending input {input_id!r}",
            tip="is the build waiting at withExplodingToken's approval step?",
        )
    action_id = str(match[0]["id"])
    form = urllib.parse.urlencode(
        {"json": json.dumps({"parameter": [{"name": parameter, "value": token}]})}
    ).encode()
    url = f"{client.build}input/{urllib.parse.quote(action_id)}/proceed"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _ = client.call("POST", url, form, headers)
    if status == 403:  # Jenkins wants a CSRF crumb (password logins): fetch one and retry
        crumb = client.crumb()
        if crumb:
            status, _ = client.call("POST", url, form, {**headers, **crumb})
    _check(status, f"the submission to input {action_id}")
    return action_id
