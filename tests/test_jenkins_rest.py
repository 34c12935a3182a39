"""`xtok approve --jenkins BUILD_URL`: submitting the sealed token to a pending input step.

No Jenkins can run here. `FakeJenkins` stands in for it: a loopback HTTP server implementing
the two endpoints as Jenkins documents them (`wfapi/pendingInputActions`, and
`input/ID/proceed` taking the `json` form field), Basic auth with an API token, and, when
switched on, the CSRF crumb (`crumbIssuer/api/json` + `Jenkins-Crumb` header + session cookie).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from conftest import ACCOUNT, CANARY, DevServer, Result, aws_env, run_xtok

USER, API_TOKEN = "ops", "11aa22bb33cc44dd55ee66ff77889900aa"


class FakeJenkins(ThreadingHTTPServer):
    require_crumb = False
    pending = True
    redirect_to = ""  # when set, every request is redirected there (a hostile proxy's move)
    answer = b""  # when set, the body of every 200 answer (a hostile or broken Jenkins)
    submitted: list[dict[str, object]]
    seen_auth: list[str]

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.submitted = []
        self.seen_auth = []

    @property
    def build_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/job/deploy/42/"


class _Handler(BaseHTTPRequestHandler):
    server: FakeJenkins

    def _authorized(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{USER}:{API_TOKEN}".encode()).decode()
        return self.headers.get("Authorization") == expected

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        body = self.server.answer if self.server.answer and status == 200 else body
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen_auth.append(self.headers.get("Authorization") or "")
        if self.server.redirect_to:
            return self._reply(302, headers={"Location": self.server.redirect_to + self.path})
        if not self._authorized():
            return self._reply(401)
        if self.path == "/job/deploy/42/wfapi/pendingInputActions":
            actions = (
                [
                    {
                        "id": "XtokToken",
                        "proceedText": "Proceed",
                        "message": "xtok approval",
                        "inputs": [{"name": "XTOK_TOKEN", "type": "PasswordParameterDefinition"}],
                        "proceedUrl": "/job/deploy/42/wfapi/inputSubmit?inputId=XtokToken",
                        "abortUrl": "/job/deploy/42/input/XtokToken/abort",
                    }
                ]
                if self.server.pending
                else []
            )
            return self._reply(
                200, json.dumps(actions).encode(), {"Content-Type": "application/json"}
            )
        if self.path == "/crumbIssuer/api/json":
            crumb = {"crumb": "c0ffee", "crumbRequestField": "Jenkins-Crumb"}
            return self._reply(
                200, json.dumps(crumb).encode(), {"Set-Cookie": "JSESSIONID.x=session1; Path=/"}
            )
        if self.path == "/job/deploy/42/":
            return self._reply(200, b"<html>build</html>")
        return self._reply(404)

    def do_POST(self) -> None:
        self.server.seen_auth.append(self.headers.get("Authorization") or "")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self.server.redirect_to:
            return self._reply(307, headers={"Location": self.server.redirect_to + self.path})
        if not self._authorized():
            return self._reply(401)
        if self.server.require_crumb and not (
            self.headers.get("Jenkins-Crumb") == "c0ffee"
            and "JSESSIONID.x=session1" in (self.headers.get("Cookie") or "")
        ):
            return self._reply(403, b"No valid crumb was included in the request")
        if self.path != "/job/deploy/42/input/XtokToken/proceed" or not self.server.pending:
            return self._reply(404)
        form = parse_qs(body)
        self.server.submitted.append(json.loads(form["json"][0]))
        self.server.pending = False
        return self._reply(302, headers={"Location": "/job/deploy/42/"})

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve() -> Iterator[FakeJenkins]:
    server = FakeJenkins()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


jenkins = pytest.fixture(_serve)
elsewhere = pytest.fixture(_serve)  # another origin: same loopback address, another port


@pytest.fixture
def xtok(
    xtok_server: DevServer, tmp_path: Path, unique: str, jenkins: FakeJenkins
) -> Callable[..., Result]:
    env = {
        **aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key),
        "XTOK_STATE_DIR": str(tmp_path / "state"),
        "JENKINS_URL": jenkins.build_url.split("job/")[0],  # the API token is for it alone
        "JENKINS_USER_ID": USER,
        "JENKINS_API_TOKEN": API_TOKEN,
        "HOME": str(tmp_path),
    }

    def call(*args: str, stdin: str | None = None, **extra: str) -> Result:
        return run_xtok(list(args), {**env, **extra}, stdin=stdin)

    assert call("secret", "put", f"jk-{unique}/db", stdin=CANARY).code == 0
    assert (
        call(
            "setup",
            "aws",
            "--role-name",
            f"jk-{unique}",
            "--trust",
            f"arn:aws:iam::{ACCOUNT}:user/admin",
            "--unsafe-no-mfa",
            "--prefix",
            f"jk-{unique}/",
        ).code
        == 0
    )
    return call


def pending_request(xtok: Callable[..., Result], unique: str) -> tuple[str, str]:
    """The request code and the run's ticket."""
    res = xtok(
        "request",
        "--secret",
        f"DB=jk-{unique}/db",
        "--role",
        f"arn:aws:iam::{ACCOUNT}:role/jk-{unique}",
    )
    assert res.code == 0, res.err
    code, ticket = res.out.split()
    return code, ticket


@pytest.mark.parametrize("crumb", [False, True], ids=["api-token", "with-crumb"])
def test_approve_submits_to_the_pending_input(
    xtok: Callable[..., Result], unique: str, jenkins: FakeJenkins, crumb: bool
) -> None:
    jenkins.require_crumb = crumb
    code, ticket = pending_request(xtok, unique)
    res = xtok("approve", code, "--yes", "--jenkins", jenkins.build_url)
    assert res.code == 0, res.err
    assert "submitted to" in res.err and "input XtokToken" in res.err
    assert res.out == ""  # the token went to Jenkins, not to the terminal
    (submission,) = jenkins.submitted
    (parameter,) = submission["parameter"]  # type: ignore[misc]
    assert parameter["name"] == "XTOK_TOKEN"
    assert parameter["value"] not in res.err
    # What Jenkins received is what the waiting run opens.
    run = xtok(
        "run",
        "--sealed",
        "--",
        "sh",
        "-c",
        'echo "db=$DB"',
        XTOK_TOKEN=parameter["value"],
        XTOK_TICKET=ticket,
    )
    assert run.code == 0 and "db=***" in run.out


def test_refusals_are_clear(xtok: Callable[..., Result], unique: str, jenkins: FakeJenkins) -> None:
    code, _ = pending_request(xtok, unique)
    bad_auth = xtok(
        "approve", code, "--yes", "--jenkins", jenkins.build_url, JENKINS_API_TOKEN="wrong"
    )
    assert bad_auth.code == 204 and "Jenkins refused" in bad_auth.err
    assert bad_auth.out.startswith("xtoks1.") and "paste the sealed token" in bad_auth.err
    jenkins.pending = False
    nothing = xtok("approve", code, "--yes", "--jenkins", jenkins.build_url)
    assert nothing.code == 205 and "no pending input 'XtokToken'" in nothing.err
    not_a_build = xtok("approve", code, "--yes", "--jenkins", "ftp://x/job/a/1/")
    assert not_a_build.code == 200 and "not a Jenkins build URL" in not_a_build.err
    painted = jenkins.build_url.replace("job/", "\x1b]0;x\x07/job/")  # BUILD_URL is pipeline's
    res = xtok("approve", code, "--yes", "--jenkins", painted)
    assert res.code == 200 and "not a Jenkins build URL" in res.err and "\x1b" not in res.both
    no_creds = xtok(
        "approve",
        code,
        "--yes",
        "--jenkins",
        jenkins.build_url,
        JENKINS_USER_ID="",
        JENKINS_API_TOKEN="",
    )
    assert no_creds.code == 208 and "no Jenkins credentials" in no_creds.err


def test_credentials_from_netrc(
    xtok: Callable[..., Result], unique: str, jenkins: FakeJenkins, tmp_path: Path
) -> None:
    netrc = tmp_path / ".netrc"  # HOME is tmp_path in these tests
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {API_TOKEN}\n")
    netrc.chmod(0o600)
    code, _ = pending_request(xtok, unique)
    res = xtok(
        "approve",
        code,
        "--yes",
        "--jenkins",
        jenkins.build_url,
        JENKINS_USER_ID="",
        JENKINS_API_TOKEN="",
    )
    assert res.code == 0, res.err
    assert len(jenkins.submitted) == 1


def test_api_token_never_follows_a_redirect_to_another_origin(
    xtok: Callable[..., Result], unique: str, jenkins: FakeJenkins, elsewhere: FakeJenkins
) -> None:
    code, _ = pending_request(xtok, unique)
    jenkins.redirect_to = f"http://127.0.0.1:{elsewhere.server_address[1]}"
    res = xtok("approve", code, "--yes", "--jenkins", jenkins.build_url)
    assert res.code == 204 and "redirected to http://127.0.0.1:" in res.err, res.err
    assert "not sent the credentials there" in res.err
    assert elsewhere.seen_auth == []  # nothing at all reached the other origin
    assert not jenkins.submitted


@pytest.mark.parametrize(
    "url", ["http://jenkins.example/job/deploy/42/", "http://10.0.0.7:8080/job/deploy/42/"]
)
def test_plain_http_is_refused_before_anything_is_minted(
    xtok: Callable[..., Result], unique: str, url: str
) -> None:
    code, _ = pending_request(xtok, unique)
    res = xtok("approve", code, "--yes", "--jenkins", url)
    assert res.code == 200 and "plain http:// would send your API token" in res.err
    assert "--insecure-http" in res.err and res.out == ""  # no sealed token was minted


def test_plain_http_never_goes_through_a_proxy(
    xtok: Callable[..., Result], unique: str, jenkins: FakeJenkins, elsewhere: FakeJenkins
) -> None:
    """With http_proxy set (a corporate laptop), a loopback http:// build URL must not send the
    API token in the clear to the proxy: it is another host than the build's."""
    code, _ = pending_request(xtok, unique)
    proxy = f"http://127.0.0.1:{elsewhere.server_address[1]}"
    url = jenkins.build_url.replace("127.0.0.1", "localhost")  # the AWS endpoint: no_proxy
    res = xtok(
        "approve",
        code,
        "--yes",
        "--jenkins",
        url,
        http_proxy=proxy,
        no_proxy="127.0.0.1",
        JENKINS_URL=url.split("job/")[0],
    )
    assert res.code == 0, res.err
    assert elsewhere.seen_auth == []  # the proxy saw nothing
    assert len(jenkins.submitted) == 1


@pytest.mark.parametrize("answer", [b'{"id": "XtokToken"}', b"[1, 2]", b"[" * 100_000, b"<html>"])
def test_an_answer_that_is_not_jenkins_fails_cleanly(
    xtok: Callable[..., Result], unique: str, jenkins: FakeJenkins, answer: bytes
) -> None:
    code, _ = pending_request(xtok, unique)
    jenkins.answer = answer
    res = xtok("approve", code, "--yes", "--jenkins", jenkins.build_url)
    assert res.code == 206 and "pendingInputActions answer is not" in res.err, res.err
    assert res.out.startswith("xtoks1.")  # the sealed token can still be pasted by hand


def test_api_token_goes_only_to_jenkins_url(
    xtok: Callable[..., Result], unique: str, jenkins: FakeJenkins, elsewhere: FakeJenkins
) -> None:
    """A pipeline can set BUILD_URL (withEnv), and so the approve line its input shows: the
    API token from the environment goes only to JENKINS_URL, refused before anything is
    minted; without JENKINS_URL it goes nowhere."""
    code, _ = pending_request(xtok, unique)
    res = xtok("approve", code, "--yes", "--jenkins", elsewhere.build_url)
    assert res.code == 204 and "your API token is not sent there" in res.err, res.err
    assert res.out == "" and elsewhere.seen_auth == []
    unset = xtok("approve", code, "--yes", "--jenkins", jenkins.build_url, JENKINS_URL="")
    assert unset.code == 208 and "JENKINS_URL" in unset.err and unset.out == ""
    assert jenkins.seen_auth == []


def test_a_netrc_default_entry_is_not_sent_to_any_jenkins(
    xtok: Callable[..., Result], unique: str, jenkins: FakeJenkins, tmp_path: Path
) -> None:
    netrc = tmp_path / ".netrc"  # HOME is tmp_path in these tests
    netrc.write_text(f"default login {USER} password {API_TOKEN}\n")
    netrc.chmod(0o600)
    code, _ = pending_request(xtok, unique)
    res = xtok(
        "approve",
        code,
        "--yes",
        "--jenkins",
        jenkins.build_url,
        JENKINS_USER_ID="",
        JENKINS_API_TOKEN="",
    )
    assert res.code == 208 and "no Jenkins credentials" in res.err, res.err
    assert jenkins.seen_auth == []
