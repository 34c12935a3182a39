"""`xtok inbox` in a real browser: Debian's headless chromium driven by Selenium, against a real
`xtok relay`, the real local endpoint (alice approves with her own keys and a virtual MFA
device), and runs proven by the loopback OIDC issuer stand-in (a true boundary: GitHub's
issuer). Screenshots land in tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ACCOUNT, CANARY, DevServer, aws_env, run_xtok
from relay_support import RUN_KEY, RelayProc, start_relay
from test_relay import GITHUB_ENV, Waiting

from xtok.approval import relay_client, seal
from xtok.approval.ci import RunIdentity
from xtok.approval.oidc_standin import Issuer
from xtok.errors import AccessDenied
from xtok.refs import parse_ref
from xtok.relay.store import Store
from xtok.server.bootstrap import clean_environment
from xtok.server.totp import code_at

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@dataclass(frozen=True)
class Setup:
    relay: RelayProc
    issuer: Issuer
    role_arn: str
    secret: str
    seed: bytes
    link: str
    run_env: dict[str, str]
    alice: dict[str, str]
    relay_data: Path


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer().running() as running:
        yield running


@pytest.fixture(scope="module")
def setup(
    xtok_server: DevServer, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """alice (keys + virtual MFA), a role she may assume with MFA, a secret, a relay that lets
    her answer, and her `xtok inbox` on loopback."""
    import boto3

    tmp = tmp_path_factory.mktemp("inbox")
    unique = uuid.uuid4().hex[:8]
    admin = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    iam = boto3.client(
        "iam",
        endpoint_url=xtok_server.url,
        region_name="us-east-1",
        aws_access_key_id=xtok_server.access_key_id,
        aws_secret_access_key=xtok_server.secret_access_key,
    )
    user = f"alice-{unique}"
    iam.create_user(UserName=user)
    keys = iam.create_access_key(UserName=user)["AccessKey"]
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=user)["VirtualMFADevice"]
    seed = base64.b32decode(device["Base32StringSeed"])
    now = time.time()
    iam.enable_mfa_device(
        UserName=user,
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1=code_at(seed, now - 30),
        AuthenticationCode2=code_at(seed, now),
    )
    alice_arn = f"arn:aws:iam::{ACCOUNT}:user/{user}"
    secret = f"inbox-{unique}/db"
    assert run_xtok(["secret", "put", secret], admin, stdin=CANARY).code == 0
    prefix = ["--prefix", f"inbox-{unique}/"]
    made = run_xtok(
        ["setup", "aws", "--role-name", f"inbox-{unique}", "--trust", alice_arn, *prefix],
        admin,
    )
    assert made.code == 0, made.err
    relay = start_relay(
        tmp / "relay",
        xtok_server.url,
        issuer.url,
        alice_arn,
        extra=("--posts-per-minute", "1000", "--logins-per-minute", "1000"),
    )
    config = tmp / "approver.toml"
    config.write_text(f'[oidc]\nissuers = ["{issuer.url}"]\n')
    alice = {
        **aws_env(xtok_server.url, keys["AccessKeyId"], keys["SecretAccessKey"]),
        "XTOK_MFA_SERIAL": device["SerialNumber"],
        "XTOK_APPROVER_CONFIG": str(config),
        "XDG_STATE_HOME": str(tmp / "alice-state"),
    }
    inbox = subprocess.Popen(
        [sys.executable, "-m", "xtok", "inbox", "--relay", relay.url, "--no-browser"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=alice,
    )
    assert inbox.stderr is not None
    seen = ""
    while "inbox on " not in seen:
        line = inbox.stderr.readline()
        assert line, f"xtok inbox did not start: {seen}"
        seen += line
    assert f"as {alice_arn}" in seen
    link = re.search(r"inbox on (\S+)", seen)
    assert link
    run_env = clean_environment()
    run_env.update(
        AWS_ENDPOINT_URL=xtok_server.url,
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        XTOK_STATE_DIR=str(tmp / "run-state"),
        PYTHONUNBUFFERED="1",
    )
    yield Setup(
        relay,
        issuer,
        f"arn:aws:iam::{ACCOUNT}:role/inbox-{unique}",
        secret,
        seed,
        link.group(1),
        run_env,
        alice,
        tmp / "relay",
    )
    inbox.terminate()
    _, rest = inbox.communicate(timeout=30)
    assert CANARY not in seen + rest and "Traceback" not in seen + rest
    relay.proc.terminate()
    relay.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium (installed by scripts/test); Selenium is given the driver's path so
    it never tries to download one."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: scripts/test installs them")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def wait_for(driver: Any, check: Any, what: str, timeout: float = 30) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(lambda d: check(d))
    except TimeoutException:
        from selenium.webdriver.common.by import By

        shown = driver.find_element(By.TAG_NAME, "body").text
        logs = driver.get_log("browser")
        raise AssertionError(f"{what}: not seen; the page shows {shown!r}; {logs}") from None


def row_of(driver: Any, table: str, rid: str) -> Any:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f'#{table} tr[data-id="{rid}"]')
    return found[0] if found else None


def settled(read: Any) -> Any:
    """`read()`, again if the page re-rendered under it: its tables are redrawn every 2 s, so
    an element found a moment ago may be gone (Selenium's stale element)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(10):
        try:
            return read()
        except StaleElementReferenceException:
            continue
    raise AssertionError("the page kept changing")


def row_text(driver: Any, table: str, rid: str) -> str:
    """The row's text ("" when it is not listed)."""
    return str(settled(lambda: (row_of(driver, table, rid) or _NO_ROW).text))


class _NO_ROW:
    text = ""


def row_cells(driver: Any, table: str, rid: str) -> list[str]:
    """The texts of the row's cells."""
    return list(
        settled(
            lambda: [c.text for c in row_of(driver, table, rid).find_elements("tag name", "td")]
        )
    )


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def open_request(driver: Any, setup: Setup, rid: str) -> None:
    driver.get(setup.link)
    wait_for(driver, lambda d: row_of(d, "pending", rid), f"request {rid} listed")
    settled(lambda: row_of(driver, "pending", rid).click())
    wait_for(driver, lambda d: rid in text_of(d, "request-title"), "the request page")


def test_approve_with_mfa_in_the_browser_and_the_waiting_run_runs(
    setup: Setup, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(setup.link)
    wait_for(browser, lambda d: "user/alice-" in text_of(d, "who"), "the page loaded")
    env = {**setup.run_env, **GITHUB_ENV, **setup.issuer.github_env()}
    args = ["request", "--secret", f"DB={setup.secret}", "--role", setup.role_arn]
    relay = ["--relay", setup.relay.url, "--wait"]
    waiting = Waiting([*args, *relay], env)
    # The new request appears without a reload, and its countdown runs.
    wait_for(browser, lambda d: row_of(d, "pending", waiting.id), "the request listed")
    first = row_cells(browser, "pending", waiting.id)[7]  # the countdown
    wait_for(browser, lambda d: row_text(d, "pending", waiting.id).find(first) < 0, "ticks")
    cells = row_cells(browser, "pending", waiting.id)
    assert cells[0] == "acme/app/deploy/prod\ngithub-actions @ 0badc0ffee"
    assert cells[2] == f"verified: acme/app\nby {setup.issuer.url}"
    assert cells[3] == f"DB={setup.secret}" and cells[4] == "15m00s"
    assert cells[5] == setup.role_arn
    assert re.fullmatch(r"1[45]m\d\ds", cells[7]), cells[7]  # the countdown
    browser.save_screenshot(str(ARTIFACTS / "inbox.png"))

    settled(lambda: row_of(browser, "pending", waiting.id).click())
    wait_for(browser, lambda d: waiting.id in text_of(d, "request-title"), "the request page")
    shown = text_of(browser, "request-rows")
    assert f"secrets DB={setup.secret}" in shown and "lifetime 15m00s" in shown
    assert "GITHUB_SHA" not in shown and "commit 0badc0ffee" in shown
    identity = text_of(browser, "identity")
    assert identity == f"VERIFIED by {setup.issuer.url} (bound to this request's key)"
    assert "repository acme/app" in text_of(browser, "claims")
    assert "first approval of this job" in text_of(browser, "differences")
    browser.set_window_size(1280, 1300)  # the whole page, down to Approve and Deny
    browser.save_screenshot(str(ARTIFACTS / "inbox-request.png"))
    browser.set_window_size(1280, 900)

    browser.find_element(By.ID, "approve").click()  # no MFA code yet
    wait_for(browser, lambda d: "an MFA code is needed" in text_of(d, "status"), "MFA asked")
    # The next step's code: the current one went into enabling the device (no reuse).
    browser.find_element(By.ID, "mfa").send_keys(code_at(setup.seed, time.time() + 30))
    browser.find_element(By.ID, "approve").click()
    wait_for(browser, lambda d: text_of(d, "status").startswith("approved"), "approved")

    done = waiting.finish()
    assert done.code == 0, done.err
    sealed, ticket = done.out.split()  # the sealed token, then the run's ticket
    ran = run_xtok(
        ["run", "--sealed", "--token-env", "SEALED", "--", "sh", "-c", 'echo "db=$DB"'],
        {**setup.run_env, "SEALED": sealed, "XTOK_TICKET": ticket},
    )
    assert ran.code == 0 and "db=***" in ran.out, ran.err
    wait_for(browser, lambda d: row_of(d, "done", waiting.id), "the request moved down")
    assert "approved" in row_text(browser, "done", waiting.id)

    # The next run of the same job asks for more: the page says what changed.
    longer = Waiting(
        [*args, "--secret", "API=other/key", "--duration", "1h", *relay],
        {**setup.run_env, **GITHUB_ENV, "XTOK_RELAY_KEY": RUN_KEY},
    )
    open_request(browser, setup, longer.id)
    changes = text_of(browser, "differences")
    assert "new secret other/key" in changes
    assert "longer lifetime 1h00m00s (was 15m00s)" in changes
    assert "unproven identity (the last run was verified)" in changes
    assert text_of(browser, "identity").startswith("UNPROVEN")
    longer.proc.send_signal(signal.SIGINT)  # the run gives up: it cancels its request
    longer.finish()
    closed = "This request is cancelled."
    wait_for(browser, lambda d: text_of(d, "request-closed") == closed, "the page says so")
    assert not browser.find_element(By.ID, "approve").is_enabled()


def test_deny_with_a_reason_fails_the_run_with_it(setup: Setup, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    relay = ["--relay", setup.relay.url]
    waiting = Waiting(
        ["request", "--secret", f"DB={setup.secret}", "--role", setup.role_arn, "--wait", *relay],
        {**setup.run_env, "XTOK_RELAY_KEY": RUN_KEY},
    )
    open_request(browser, setup, waiting.id)
    assert text_of(browser, "identity").startswith("UNPROVEN")
    browser.find_element(By.ID, "reason").send_keys("not during the freeze")
    browser.find_element(By.ID, "deny").click()
    wait_for(browser, lambda d: text_of(d, "status").startswith("denied"), "denied")
    done = waiting.finish()
    assert done.code == int(AccessDenied.exit_code)
    assert "not during the freeze" in done.err and done.out == ""
    wait_for(browser, lambda d: row_of(d, "done", waiting.id), "the request moved down")
    assert "not during the freeze" in row_text(browser, "done", waiting.id)


def _post_forged(setup: Setup, identity: RunIdentity) -> str:
    request, _ = seal.new_request_in_memory(
        identity, (parse_ref(f"DB={setup.secret}"),), 900, setup.role_arn
    )
    relay_client.Relay(setup.relay.url).post(request.encode(), None, RUN_KEY)
    return request.id


def _listed_by_a_hostile_relay(setup: Setup, identity: RunIdentity) -> seal.RequestCode:
    """A code no genuine xtok or relay accepts (a bidi character in a field), written straight
    into the relay's store: what a hostile relay could list."""
    made, _ = seal.new_request_in_memory(
        RunIdentity(ci="github", job="deploy", build="7"), (parse_ref("DB=x"),), 900, None
    )
    forged = dataclasses.replace(made, identity=identity)
    now = int(time.time())
    Store(setup.relay_data / "relay.db").add(
        {
            "id": forged.id,
            "code": forged.encode(),
            "proof": None,
            "digest": forged.digest().hex(),
            "poster": "ci-without-oidc",
            "poster_kind": "key",
            "poster_issuer": None,
            "poster_subject": None,
            "created": now,
            "expires": now + 900,
            "state": "pending",
            "wait_hash": "0" * 64,
        }
    )
    return forged


def test_forged_markup_is_text_and_control_characters_are_refused(
    setup: Setup, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    markup = '<img src=x id="pwned"><b>bold</b><script>document.title="pwned"</script>'
    inert = _post_forged(setup, RunIdentity(ci="github", job=markup, build="1"))
    forged = _listed_by_a_hostile_relay(
        setup, RunIdentity(ci="github", job="deploy", build="7\u202e3")
    )
    bidi = forged.id
    browser.get_log("browser")  # what earlier tests logged
    browser.get(setup.link)
    wait_for(browser, lambda d: row_of(d, "pending", bidi), "the forged requests listed")
    assert row_cells(browser, "pending", inert)[0] == f"{markup}\ngithub @ -"
    assert not browser.find_elements(By.CSS_SELECTOR, "#pending img, #pending b, #pwned")
    assert browser.title == "xtok inbox"
    refused = row_text(browser, "pending", bidi)
    assert "REFUSED" in refused and "control or bidi character (\\u202e)" in refused, refused
    assert "\u202e" not in refused
    browser.save_screenshot(str(ARTIFACTS / "inbox-forged.png"))

    open_request(browser, setup, bidi)
    assert not browser.find_element(By.ID, "approve").is_enabled()
    assert "REFUSED" in text_of(browser, "request-refused")
    # The page's button is only a convenience: the inbox refuses to mint for it anyway.
    body = {"mfa_code": "", "digest": forged.digest().hex()}
    status, answer = _post(setup, browser, f"api/requests/{bidi}/approve", body)
    assert status == 400 and "control or bidi character" in answer["error"]
    # Approve names the request the approver saw: another one under the same id is refused.
    seen = {"mfa_code": "", "digest": "00" * 32}
    status, answer = _post(setup, browser, f"api/requests/{inert}/approve", seen)
    assert status == 400 and "changed on the relay since you opened it" in answer["error"]
    logged = browser.get_log("browser")
    assert not [e for e in logged if e["source"] in ("javascript", "security")], logged


def _page(link: str, **headers: str) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(link, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _post(
    setup: Setup, browser: Any, path: str, body: dict[str, Any], **headers: str
) -> tuple[int, Any]:
    origin = setup.link.split("/", 3)
    csrf = re.search(r'name="xtok-csrf" content="([^"]+)"', _page(setup.link)[2])
    assert csrf
    sent = {
        "Content-Type": "application/json",
        "Origin": f"{origin[0]}//{origin[2]}",
        "X-Xtok-Csrf": csrf.group(1),
        **headers,
    }
    req = urllib.request.Request(  # noqa: S310 - loopback
        setup.link + path, data=json.dumps(body).encode(), headers=sent, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        return exc.code, json.loads(text) if text.startswith("{") else text


def test_no_secret_no_page_and_no_cross_site_answers(setup: Setup, browser: Any) -> None:
    origin = setup.link.rsplit("/", 2)[0]
    secret = setup.link[len(origin) + 1 :]
    near_miss = origin + "/" + ("y" if secret[0] != "y" else "z") + secret[1:]  # one wrong char
    for url in (origin + "/", origin + "/api/state", near_miss):
        status, headers, text = _page(url)
        assert (status, text) == (403, "forbidden"), url
        assert "default-src 'none'" in headers["content-security-policy"]
    browser.get(origin + "/")
    assert "forbidden" in browser.page_source and "xtok-csrf" not in browser.page_source

    status, headers, page = _page(setup.link)
    assert status == 200 and 'name="xtok-csrf"' in page
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "require-trusted-types-for 'script'" in csp
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # no external assets
    # DNS rebinding: the right path under another host name is refused.
    assert _page(setup.link, Host="attacker.example:80")[0] == 403

    rid = _post_forged(setup, RunIdentity(ci="github", job="csrf", build="1"))
    path = f"api/requests/{rid}/deny"
    assert _post(setup, browser, path, {"reason": "x"}, **{"X-Xtok-Csrf": "guess"})[0] == 403
    assert _post(setup, browser, path, {"reason": "x"}, Origin="http://evil.example")[0] == 403
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert _post(setup, browser, path, {"reason": "x"}, **form)[0] == 403
    assert relay_state(setup, rid) == "pending"
    assert _post(setup, browser, path, {"reason": "cleanup"})[0] == 200
    assert relay_state(setup, rid) == "denied"


def relay_state(setup: Setup, rid: str) -> str:
    status, _, text = _page(setup.link + "api/state")
    assert status == 200
    state = json.loads(text)
    return next(e["state"] for e in state["pending"] + state["done"] if e["id"] == rid)


def test_the_browser_is_opened_without_the_secret_on_a_command_line(
    setup: Setup, tmp_path: Path
) -> None:
    """$BROWSER (a recording script) is what a desktop would start: it gets a 0600 file that
    other local users cannot read, never the link itself."""
    tmp_path.chmod(0o755)
    argv = tmp_path / "argv"
    opener = tmp_path / "browser"
    opener.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv}\n')
    opener.chmod(0o755)
    inbox = subprocess.Popen(
        [sys.executable, "-m", "xtok", "inbox", "--relay", setup.relay.url],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**setup.alice, "BROWSER": f"{opener} %s"},
    )
    try:
        assert inbox.stderr is not None
        line = ""
        while "inbox opened in your browser" not in line:
            line = inbox.stderr.readline()
            assert line, "xtok inbox did not open a browser"
        page = Path(argv.read_text().strip().removeprefix("file://"))
        assert page.name == "open.html" and str(page) in line
        assert stat.S_IMODE(page.stat().st_mode) == 0o600
        assert stat.S_IMODE(page.parent.stat().st_mode) == 0o700
        link = re.search(r'url=(http://127\.0\.0\.1:\d+/[^/"]+/)', page.read_text())
        assert link and link.group(1) not in argv.read_text()
        assert _page(link.group(1))[0] == 200
        nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
        peek = subprocess.run([*nobody, "cat", str(page)], capture_output=True, check=False)
        assert peek.returncode != 0 and b"127.0.0.1" not in peek.stdout
        origin = link.group(1).rsplit("/", 2)[0]
        probe = "import sys, urllib.request as u\ntry: u.urlopen(sys.argv[1])\n"
        probe += "except Exception as e: print(e)"
        guess = subprocess.run(
            [*nobody, sys.executable, "-c", probe, origin + "/"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "403" in guess.stdout, guess
    finally:
        inbox.terminate()
        inbox.wait(timeout=30)


def test_inbox_fails_closed_without_a_relay(setup: Setup) -> None:
    res = run_xtok(["inbox", "--no-browser"], {**setup.alice})
    assert res.code == 200 and "no relay given" in res.err
    res = run_xtok(["inbox", "--relay", "http://example.com", "--no-browser"], setup.alice)
    assert res.code == 200 and "is not https://" in res.err
    dead = f"http://127.0.0.1:{_closed_port()}"
    res = run_xtok(["inbox", "--relay", dead, "--no-browser"], setup.alice)
    assert res.code == 206 and "cannot reach the relay" in res.err and "inbox on" not in res.err


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_inbox_logs_in_again_when_the_relay_forgets_its_session(
    setup: Setup, xtok_server: DevServer, tmp_path: Path
) -> None:
    """A relay session lasts 15 minutes (or until the relay restarts): the inbox logs in again
    with a fresh GetCallerIdentity proof instead of failing."""
    alice = f"arn:aws:iam::{ACCOUNT}:user/alice-*"
    first = start_relay(tmp_path / "a", xtok_server.url, setup.issuer.url, alice)
    port = first.url.rsplit(":", 1)[1]
    inbox = subprocess.Popen(
        [sys.executable, "-m", "xtok", "inbox", "--relay", first.url, "--no-browser"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=setup.alice,
    )
    second = None
    try:
        assert inbox.stderr is not None
        line = ""
        while "inbox on " not in line:
            line = inbox.stderr.readline()
            assert line, "xtok inbox did not start"
        link = line.split("inbox on ", 1)[1].strip()
        assert _page(link + "api/state")[0] == 200
        first.proc.terminate()
        first.proc.wait(timeout=30)
        # The same address, a relay with empty state: the inbox's session is unknown there.
        second = start_relay(
            tmp_path / "b",
            xtok_server.url,
            setup.issuer.url,
            alice,
            extra=("--listen", f"127.0.0.1:{port}"),
        )
        status, _, text = _page(link + "api/state")
        assert status == 200, text
        assert json.loads(text)["pending"] == []
    finally:
        inbox.terminate()
        inbox.wait(timeout=30)
        for relay in (first, second):
            if relay and relay.proc.poll() is None:
                relay.proc.terminate()
                relay.proc.wait(timeout=30)
