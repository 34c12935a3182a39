"""`xtok demo`: the whole flow, narrated, against a dev endpoint in a subprocess.

Every step runs the real `xtok` command line, shown whole as typed, by one of four actors: the
admin, alice (the approver), the pipeline, and an attacker who holds a leaked token (played with
boto3, the library under the aws CLI). Output is shown whole, except tokens: a live credential
or a run's ticket is never printed, request codes and sealed tokens are cut for length, each
saying so. The relay scene's CI identity comes from a loopback stand-in for GitHub's OIDC issuer
(xtok.approval.oidc_standin); every check on it is xtok's own. The demo checks what it shows and
exits non-zero if anything behaves otherwise.

The story is a list of scenes (`Demo.scenes`): small methods that share the endpoint and state.
"""

from __future__ import annotations

import base64
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xtok.approval.oidc_standin import Issuer
from xtok.errors import Error
from xtok.server.bootstrap import clean_environment, spawn_dev
from xtok.server.crypto import encode_key, new_key, write_private
from xtok.server.totp import STEP, code_at

ROLE = "xtok-ci"
SECRET_NAME = "/prod/exampleCredential"  # noqa: S105 - a name, not a value
OTHER_NAME = "/prod/other"
SHORT_SECONDS = 5
WIDTH = 92
BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"
# What each kind of armored text is, and why the demo does not print it whole.
_ARMORED = re.compile(r"^(xtok[rst]?1)\.\S+$")
_WHY_CUT = {
    "xtok1": "a live credential, so the demo never prints it",
    "xtokt1": "the run's ticket, a secret that never leaves the run, so the demo never prints it",
    "xtokr1": "not secret, cut here for length; the approver gets it whole",
    "xtoks1": "safe to paste anywhere, as only its run can open it; cut here for length",
}


NEXT = (
    "(umask 077; exec xtok server --dev --min-duration 5 > dev.env) &   # dev.env: admin keys",
    "sleep 1; . ./dev.env",
    "xtok secret put /prod/db                        # type a value, twice",
    "export XTOK_TOKEN=$(xtok token --duration 30s)  # the admin's own token, for 30 s",
    "xtok run --min-ttl 0 --secret DB=/prod/db -- sh -c 'echo \"DB is $DB\"'",
    "# masked; the same 30 s later: refused",
    "kill %1                                         # its throw-away data goes with it",
)


DEPLOY_SH = """#!/bin/sh
echo "deploying with EXAMPLE_CREDENTIAL=$EXAMPLE_CREDENTIAL"
env | grep -q '^AWS_' && echo "AWS variables leaked" || echo "no AWS_* variable here"
"""


class DemoFailed(Error):
    pass


class Demo:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.tmp = Path(tempfile.mkdtemp(prefix="xtok-demo-"))
        self.key_file = self.tmp / "master.key"
        write_private(self.key_file, encode_key(new_key()) + "\n")
        self.data = self.tmp / "data"
        self.server: subprocess.Popen[str] | None = None
        self.base = clean_environment()
        self.admin: dict[str, str] = {}
        self.alice: dict[str, str] = {}
        self.pipeline: dict[str, str] = {}
        self.role_arn = ""
        self.serial = ""
        self.seed = b""
        self.last_step = 0  # the MFA time step of the last code used
        self.token = ""
        self.scene_number = 0
        self.ci = Issuer()  # plays GitHub's OIDC issuer in the relay scene

    @property
    def scenes(self) -> list[Callable[[], None]]:
        return [
            self.start_endpoint,
            self.store_secrets,
            self.approver_and_mfa,
            self.create_role,
            self.no_mfa_no_role,
            self.mint_with_mfa,
            self.masked_step,
            self.out_of_scope,
            self.explodes,
            self.sealed,
            self.relay,
            self.revoke,
            self.audit,
            self.summary,
        ]

    # --- showing ----------------------------------------------------------------------------

    def step(self, title: str) -> None:
        """A scene's title, numbered in the order the scenes run."""
        self.say(f"\n{BOLD}== {self.scene_number}. {title}{RESET}")
        self.scene_number += 1

    def tell(self, text: str) -> None:
        """Narration, wrapped."""
        for line in textwrap.wrap(text, WIDTH - 2):
            self.say(f"  {line}")

    def show_command(self, who: str, words: Sequence[str], comment: str = "") -> None:
        """`who$ command`, whole: long commands wrap at word boundaries, as a shell takes them."""
        for line in textwrap.wrap(comment, WIDTH - 2):
            self.say(f"{DIM}# {line}{RESET}")
        lines, line = [], f"{who}$"
        for word in words:
            if len(line) + 1 + len(word) > WIDTH - 2 and not line.endswith("$"):
                lines.append(line + " \\")
                line = "    "
            line += ("" if line == "    " else " ") + word
        lines.append(line)
        for text in lines:
            self.say(f"{DIM}{text}{RESET}")

    def show_output(self, text: str, *, wrap: bool = True) -> None:
        """Output lines whole (wrapped unless a table), armored tokens cut saying why."""
        for line in text.splitlines():
            armored = _ARMORED.match(line.strip())
            if armored:
                kind = armored.group(1)
                line = f"{kind}.… ({len(line.strip())} characters; {_WHY_CUT[kind]})"
            parts = [line]
            if wrap:
                parts = textwrap.wrap(
                    line, WIDTH - 2, subsequent_indent="    ", break_on_hyphens=False
                )
            for part in parts or [""]:
                self.say(f"  {part}")

    # --- doing ------------------------------------------------------------------------------

    def xtok(
        self,
        who: str,
        args: Sequence[str],
        env: dict[str, str],
        *,
        stdin: str | None = None,
        expect: int = 0,
        comment: str = "",
        prefix: Sequence[str] = (),
        shown: Sequence[str] | None = None,
        wrap: bool = True,
    ) -> str:
        """Run `xtok ARGS` as a user would, show it and its output (stdout and stderr in the
        order written), check its exit status, and return the output. `shown` is how a shell
        user types ARGS when one of them is a variable's value (e.g. "$REQUEST_CODE")."""
        proc = self.launch(
            who, args, env, stdin=stdin is not None, comment=comment, prefix=prefix, shown=shown
        )
        return self.finish(proc, args[0], stdin=stdin, expect=expect, wrap=wrap)

    def launch(
        self,
        who: str,
        args: Sequence[str],
        env: dict[str, str],
        *,
        stdin: bool = False,
        comment: str = "",
        prefix: Sequence[str] = (),
        shown: Sequence[str] | None = None,
    ) -> subprocess.Popen[str]:
        """Show `xtok ARGS` and start it (stdout and stderr on one pipe, in the order written)."""
        words = shown if shown is not None else [shlex.quote(a) for a in args]
        self.show_command(who, [*prefix, "xtok", *words], comment)
        return subprocess.Popen(
            [sys.executable, "-m", "xtok", *args],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.tmp,
        )

    def finish(
        self,
        proc: subprocess.Popen[str],
        name: str,
        *,
        stdin: str | None = None,
        expect: int = 0,
        wrap: bool = True,
    ) -> str:
        """Wait for a launched `xtok NAME …`, show the rest of its output, check its exit
        status, and return that output."""
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        # Read on from proc.stdout (communicate() would skip what readline() buffered).
        deadline = threading.Timer(120, proc.kill)
        deadline.start()
        try:
            out = proc.stdout.read() if proc.stdout else ""
            proc.wait()
        finally:
            deadline.cancel()
        self.show_output(out, wrap=wrap)
        if proc.returncode != expect:
            raise DemoFailed(f"`xtok {name}` exited {proc.returncode}, expected {expect}")
        if expect != 0:
            self.tell(f"(exit status {proc.returncode}: refused, as it should be)")
        return out

    def client(self, service: str, creds: dict[str, str]) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.admin["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds.get("SessionToken"),
            config=Config(retries={"max_attempts": 1}),
        )

    def attacker(self, words: str, call: Callable[[], Any], code: str) -> None:
        """A call with a leaked token's keys, shown as the aws CLI command it amounts to."""
        from botocore.exceptions import ClientError

        self.show_command("attacker", shlex.split(words), "made with boto3, as the aws CLI would")
        try:
            call()
        except ClientError as exc:
            got = exc.response["Error"]["Code"]
            self.show_output(f"An error occurred ({got}): refused by the endpoint")
            if got != code:
                raise DemoFailed(f"expected {code}, got {got}") from None
            return
        raise DemoFailed(f"expected {code}, but the call succeeded")

    def mfa_code(self) -> str:
        """A code alice's authenticator app shows. The endpoint, as AWS, takes codes one step
        either side of now, each step once and never one older than the last: so the next
        step after the last used, waiting for it to come within reach when need be."""
        step = self.last_step + 1
        wait = (step - 1) * STEP - time.time()
        if wait > 0:
            self.tell(
                f"(alice waits {wait:.0f} s for her app's next code: the endpoint, as AWS, "
                "takes each code once and never an older one)"
            )
            time.sleep(wait)
        self.last_step = max(step, int(time.time()) // STEP - 1)
        return code_at(self.seed, self.last_step * STEP)

    def mfa_args(self) -> list[str]:
        return ["--mfa-serial", self.serial, "--mfa-code", self.mfa_code()]

    def mint_args(self, label: str, *extra: str) -> list[str]:
        """`xtok token` for the role and the one secret, as alice types it (with MFA)."""
        scope = ["--role", self.role_arn, "--secret", SECRET_NAME, "--for", label]
        return ["token", *scope, *extra, *self.mfa_args()]

    def keys_env(self, creds: dict[str, str]) -> dict[str, str]:
        return {
            **self.admin,
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        }

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=30)

    # --- the story --------------------------------------------------------------------------

    def start_endpoint(self) -> None:
        self.step("A local AWS-compatible endpoint stands in for AWS")
        args = ["--data", str(self.data), "--master-key-file", str(self.key_file)]
        args += ["--min-duration", str(SHORT_SECONDS)]
        issuers = {"XTOK_RELAY_ISSUERS": self.ci.url}
        self.show_command(
            "admin",
            [f"XTOK_RELAY_ISSUERS={self.ci.url}", "xtok", "server", "--dev", *args, "&"],
            "XTOK_RELAY_ISSUERS: its relay also trusts the loopback stand-in for GitHub's OIDC "
            "issuer that the relay scene uses (never trust it anywhere else)",
        )
        self.server, exports = spawn_dev(*args, env=issuers)
        self.admin = {**self.base, **exports}
        self.tell(
            f"It serves STS, Secrets Manager and IAM on {exports['AWS_ENDPOINT_URL']} (and a "
            "relay under /relay) and, unlike moto, enforces signatures, expiry, policies and "
            "MFA. It printed the admin's keys as `export AWS_…` lines (not shown: a "
            "credential). Everyone below reaches it through AWS_ENDPOINT_URL; the admin and "
            "alice use their own AWS keys, the pipeline only a token. --min-duration "
            f"{SHORT_SECONDS} lets this dev endpoint hand out sessions shorter than AWS's 15 "
            "minutes, to watch one explode."
        )

    def store_secrets(self) -> None:
        self.step("The admin stores the permanent secret (the value from stdin, never argv)")
        made_up = "a random value the demo made up; it is never shown"
        self.xtok(
            "admin",
            ["secret", "put", SECRET_NAME, "--description", "from the write-up"],
            self.admin,
            stdin=secrets.token_urlsafe(18),
            comment=f"stdin: {made_up}",
            prefix=["printf", "%s", '"$VALUE"', "|"],
        )
        self.xtok(
            "admin",
            ["secret", "put", OTHER_NAME],
            self.admin,
            stdin=secrets.token_urlsafe(18),
            comment="a second secret, which no token below asks for",
            prefix=["printf", "%s", '"$OTHER"', "|"],
        )

    def approver_and_mfa(self) -> None:
        self.step("Alice, the approver, gets AWS keys and a virtual MFA device")
        admin = {
            "AccessKeyId": self.admin["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": self.admin["AWS_SECRET_ACCESS_KEY"],
        }
        iam = self.client("iam", admin)
        self.show_command("admin", ["aws", "iam", "create-user", "--user-name", "alice"])
        iam.create_user(UserName="alice")
        self.show_command("admin", ["aws", "iam", "create-access-key", "--user-name", "alice"])
        keys = iam.create_access_key(UserName="alice")["AccessKey"]
        self.alice = {
            **self.keys_env(
                {"AccessKeyId": keys["AccessKeyId"], "SecretAccessKey": keys["SecretAccessKey"]}
            ),
            # Her xtok's config and state (approver.toml, approvals seen) stay in the demo's dir.
            "XDG_CONFIG_HOME": str(self.tmp / "alice" / "config"),
            "XDG_STATE_HOME": str(self.tmp / "alice" / "state"),
        }
        self.show_command(
            "admin",
            ["aws", "iam", "create-virtual-mfa-device", "--virtual-mfa-device-name", "alice"],
        )
        device = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]
        self.seed, self.serial = (
            base64.b32decode(device["Base32StringSeed"]),
            device["SerialNumber"],
        )
        now = time.time()  # two consecutive codes, as AWS asks to enable a device
        codes = [code_at(self.seed, now - STEP), code_at(self.seed, now)]
        self.last_step = int(now) // STEP
        self.show_command(
            "admin",
            [
                *("aws", "iam", "enable-mfa-device", "--user-name", "alice"),
                *("--serial-number", self.serial),
                *("--authentication-code1", codes[0], "--authentication-code2", codes[1]),
            ],
        )
        iam.enable_mfa_device(
            UserName="alice",
            SerialNumber=self.serial,
            AuthenticationCode1=codes[0],
            AuthenticationCode2=codes[1],
        )
        self.tell(
            "(These four calls are made with boto3, the library under the aws CLI; alice's "
            "keys and the device's seed are not shown: credentials.) The demo plays alice's "
            "authenticator app: every MFA code below is computed from the device's seed, "
            "exactly as her phone would compute it."
        )

    def create_role(self) -> None:
        self.step("The admin creates the role approvers assume: alice only, with MFA")
        account = self.admin_account()
        self.role_arn = f"arn:aws:iam::{account}:role/{ROLE}"
        self.xtok(
            "admin",
            [
                *("setup", "aws", "--role-name", ROLE),
                *("--trust", f"arn:aws:iam::{account}:user/alice", "--prefix", "/prod/"),
            ],
            self.admin,
        )

    def admin_account(self) -> str:
        keys = {
            "AccessKeyId": self.admin["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": self.admin["AWS_SECRET_ACCESS_KEY"],
        }
        return str(self.client("sts", keys).get_caller_identity()["Account"])

    def no_mfa_no_role(self) -> None:
        self.step("Without MFA, alice's own keys cannot assume the role")
        self.xtok(
            "alice",
            ["token", "--role", self.role_arn, "--secret", SECRET_NAME],
            self.alice,
            expect=204,
        )
        self.tell("So keys stolen from alice's laptop alone cannot mint a token.")

    def mint_with_mfa(self) -> None:
        self.step("Alice approves deploy #42 with MFA: a 15-minute token for one secret")
        minted = self.xtok(
            "alice",
            self.mint_args("deploy #42"),
            self.alice,
            comment="the MFA code is computed from the device's seed (alice would type it)",
        )
        self.token = self.armored(minted, "xtok1")
        self.pipeline = {
            **self.base,
            "AWS_ENDPOINT_URL": self.admin["AWS_ENDPOINT_URL"],
            "AWS_REGION": "us-east-1",
            "XTOK_TOKEN": self.token,
        }
        self.tell(
            "Alice hands the token to the pipeline, which keeps it in XTOK_TOKEN (in Jenkins: an "
            "input step). The pipeline has no AWS keys of its own, and no permanent secret."
        )
        self.show_command("pipeline", ["export", "XTOK_TOKEN=…"], "the token alice handed over")
        self.xtok("pipeline", ["inspect"], self.pipeline, comment="reads $XTOK_TOKEN")

    def masked_step(self) -> None:
        self.step("The pipeline step runs with the secret; its output is masked")
        script = self.tmp / "deploy.sh"
        script.write_text(DEPLOY_SH)
        script.chmod(0o700)
        self.show_command("pipeline", ["cat", "deploy.sh"], "the job's step: a careless one")
        self.show_output(DEPLOY_SH)
        out = self.xtok(
            "pipeline",
            ["run", "--secret", f"EXAMPLE_CREDENTIAL={SECRET_NAME}", "--", "./deploy.sh"],
            self.pipeline,
        )
        if "EXAMPLE_CREDENTIAL=***" not in out or "leaked" in out:
            raise DemoFailed("the step's output was not masked, or saw AWS variables")
        self.tell(
            "The command printed the secret; xtok replaced it with ***. The command never saw "
            "the token or any AWS credential."
        )

    def out_of_scope(self) -> None:
        self.step("Leaked, the token still reads nothing outside its scope")
        self.attacker(
            f"aws secretsmanager get-secret-value --secret-id {OTHER_NAME}",
            lambda: self.client("secretsmanager", self.raw(self.token)).get_secret_value(
                SecretId=OTHER_NAME
            ),
            "AccessDeniedException",
        )
        self.tell("Its session policy names exactly /prod/exampleCredential.")

    def explodes(self) -> None:
        self.step(f"A token explodes: a {SHORT_SECONDS}-second one, used once, then too late")
        short = self.armored(
            self.xtok(
                "alice",
                self.mint_args("deploy #42b", "--duration", f"{SHORT_SECONDS}s"),
                self.alice,
                comment=f"--duration {SHORT_SECONDS}s: only this dev endpoint allows it",
            ),
            "xtok1",
        )
        self.show_command("pipeline", ["export", "XTOK_TOKEN=…"], "the short-lived token")
        env = {**self.pipeline, "XTOK_TOKEN": short}
        run = ["run", "--min-ttl", "0", "--secret", f"C={SECRET_NAME}"]
        run += ["--", "sh", "-c", 'echo "fetched C (${#C} characters)"']
        self.xtok("pipeline", run, env, comment="--min-ttl 0: use it however little is left")
        expires = self.parse(short).expiration
        left = 0.0 if expires is None else expires.timestamp() - time.time()
        while left >= 1:
            self.tell(f"… {int(left)} s to go")
            time.sleep(1)
            left -= 1
        time.sleep(left + 1)  # past the second it expires in
        self.tell("… it has exploded. The same command again:")
        self.xtok("pipeline", run, env, expect=202)
        self.tell("xtok refuses it before any call. Even sent to AWS regardless, it is dead:")
        self.attacker(
            f"aws secretsmanager get-secret-value --secret-id {SECRET_NAME}",
            lambda: self.client("secretsmanager", self.raw(short)).get_secret_value(
                SecretId=SECRET_NAME
            ),
            "ExpiredTokenException",
        )

    def sealed(self) -> None:
        self.step("Sealed tokens (recommended): only the run that asked can open it, once")
        self.tell(
            "A plain token works for whoever sees it until it explodes. A sealed one is "
            "useless outside the run that requested it, so it may pass through logs and chat."
        )
        pipeline = {k: v for k, v in self.pipeline.items() if k != "XTOK_TOKEN"}
        env44 = {**pipeline, "XTOK_STATE_DIR": str(self.state_dir("run-44"))}
        code, env44["XTOK_TICKET"] = self.request(
            "pipeline",
            ["--job", "deploy", "--build", "44", "--commit", "3f9c2ab"],
            env44,
            "build 44 asks; its one-time private key stays in its private state dir, "
            "encrypted to the run's ticket",
        )
        mfa = self.mfa_args()
        sealed = self.armored(
            self.xtok(
                "alice",
                ["approve", code, "--yes", *mfa],
                self.alice,
                comment="REQUEST_CODE: the code above, as it reached alice. She reads what she "
                "approves; --yes stands in for her typing y",
                shown=["approve", '"$REQUEST_CODE"', "--yes", *mfa],
            ),
            "xtoks1",
        )
        self.show_command(
            "pipeline",
            ["export", "XTOK_TOKEN=…"],
            "the sealed token (in Jenkins: pasted into "
            "the build's input, or sent there by `xtok approve --jenkins`)",
        )
        step = ["run", "--sealed", "--", "./deploy.sh"]
        env44["XTOK_TOKEN"] = sealed
        out = self.xtok(
            "pipeline",
            step,
            env44,
            comment="build 44 opens it with its ticket and key, which is deleted",
        )
        if "EXAMPLE_CREDENTIAL=***" not in out:
            raise DemoFailed("the sealed run's output was not masked")
        self.xtok("pipeline", step, env44, expect=201, comment="the same token a second time")
        env45 = {**pipeline, "XTOK_STATE_DIR": str(self.state_dir("run-45"))}
        _, env45["XTOK_TICKET"] = self.request(
            "other-job",
            ["--job", "other", "--build", "45"],
            env45,
            "another run on the same agent, with a request of its own",
        )
        self.xtok(
            "other-job",
            step,
            {**env45, "XTOK_TOKEN": sealed},
            expect=201,
            comment="it got hold of build 44's sealed token",
        )

    def request(
        self, who: str, identity: Sequence[str], env: dict[str, str], comment: str
    ) -> tuple[str, str]:
        """`xtok request` for the one secret; returns its two lines: the code and the ticket."""
        ask = ["request", "--secret", f"EXAMPLE_CREDENTIAL={SECRET_NAME}", "--role", self.role_arn]
        out = self.xtok(who, [*ask, *identity], env, comment=comment)
        self.show_command(
            who,
            ["export", "XTOK_TICKET=…"],
            "line 2, the run's ticket: it stays in this run, for `xtok run --sealed`",
        )
        return self.armored(out, "xtokr1"), self.armored(out, "xtokt1")

    def relay(self) -> None:
        self.step("Approvals anywhere: a GitHub Actions job asks through the relay")
        relay = self.admin["AWS_ENDPOINT_URL"] + "/relay"
        self.tell(
            "No code to copy, no key on disk: the job posts its request to a relay (the dev "
            f"endpoint serves one on {relay}), proven by its CI's OIDC token, and waits in one "
            "process; alice picks it from the relay, her own xtok verifies the proof, and her "
            "approval goes back the same way. The job runs with the variables a GitHub runner "
            "sets (GITHUB_REPOSITORY=acme/app, run 44, and, for `permissions: id-token: write`, "
            "ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN); a loopback stand-in plays GitHub's issuer."
        )
        job_env = {
            **{k: v for k, v in self.pipeline.items() if k != "XTOK_TOKEN"},
            **self.ci.github_env(),
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "acme/app",
            "GITHUB_WORKFLOW": "deploy",
            "GITHUB_JOB": "prod",
            "GITHUB_RUN_ID": "77",
            "GITHUB_RUN_NUMBER": "44",
            "GITHUB_SHA": "0badc0ffee",
        }
        args = ["run", "--relay", relay, "--role", self.role_arn]
        args += ["--secret", f"EXAMPLE_CREDENTIAL={SECRET_NAME}"]
        args += ["--", "sh", "-c", 'echo "deployed with $EXAMPLE_CREDENTIAL"']
        with self.ci.running():
            job = self.launch(
                "pipeline",
                args,
                job_env,
                comment="the job's step; no $XTOK_TOKEN, no request code, no ticket",
            )
            rid = self.posted(job)
            approver_toml = f'[oidc]\nissuers = ["{self.ci.url}"]\n'
            config = Path(self.alice["XDG_CONFIG_HOME"]) / "xtok" / "approver.toml"
            config.parent.mkdir(parents=True)
            config.write_text(approver_toml)
            self.show_command(
                "alice",
                ["cat", "~/.config/xtok/approver.toml"],
                "issuers alice trusts besides GitHub's and GitLab's: the stand-in, for the demo",
            )
            self.show_output(approver_toml)
            self.xtok(
                "alice",
                ["approve", "--relay", relay],
                self.alice,
                comment="she logs in with a GetCallerIdentity request signed by her AWS keys "
                "(no new secret) and lists what waits",
            )
            screen = self.xtok(
                "alice",
                ["approve", "--relay", relay, "--pick", rid, "--yes", *self.mfa_args()],
                self.alice,
                comment="she reads what she approves; --yes stands in for her typing y",
            )
            if "identity: VERIFIED by" not in screen:
                raise DemoFailed("the approve screen did not show a verified identity")
            self.tell("Meanwhile the job, still waiting, gets its answer and runs the step:")
            out = self.finish(job, "run")
        if "deployed with ***" not in out:
            raise DemoFailed("the job did not run with the approved, masked secret")
        self.tell(
            "The relay learns nothing usable: it carried the request code (a public key and "
            "the names asked for), the job's OIDC token (bound to that key) and a sealed token "
            "that only the key in the job's memory opens. It never held an AWS credential or "
            "the secret."
        )

    def posted(self, job: subprocess.Popen[str]) -> str:
        """Show the waiting job's output up to the line naming its request; return the ID."""
        said = ""
        while "--pick " not in said:
            line = job.stdout.readline() if job.stdout else ""
            if not line:
                raise DemoFailed("the job did not post its request")
            self.show_output(line)
            said += line
        return said.rsplit("--pick ", 1)[1].split()[0]

    def state_dir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(mode=0o700)
        return path

    def revoke(self) -> None:
        self.step("Revoke: every session of the role issued before now is denied")
        time.sleep(1.1)  # aws:TokenIssueTime has one-second resolution
        self.xtok("admin", ["revoke", "--role", ROLE], self.admin)
        self.xtok(
            "pipeline",
            ["run", "--secret", f"C={SECRET_NAME}", "--", "true"],
            self.pipeline,
            expect=204,
            comment="deploy #42's token still has minutes to live",
        )
        time.sleep(1.1)
        fresh = self.armored(self.xtok("alice", self.mint_args("deploy #43"), self.alice), "xtok1")
        self.show_command("pipeline", ["export", "XTOK_TOKEN=…"], "the new token")
        self.xtok(
            "pipeline",
            ["run", "--secret", f"C={SECRET_NAME}", "--", "echo", "a new session works"],
            {**self.pipeline, "XTOK_TOKEN": fresh},
        )

    def audit(self) -> None:
        self.step("The audit trail: who did what, allowed or not (never a value)")
        store = ["--data", str(self.data), "--master-key-file", str(self.key_file)]
        actions = ["sts:AssumeRole", "secretsmanager:GetSecretValue", "iam:PutRolePolicy"]
        self.xtok(
            "admin",
            ["audit", *store, *(a for action in actions for a in ("--action", action))],
            self.base,
            comment="the endpoint's own log (AWS has CloudTrail); three kinds of row",
            wrap=False,
        )
        self.tell(
            "'approved by' is the session's SourceIdentity: xtok sets it to the approver, so "
            "every read of the secret names who allowed it."
        )
        self.xtok("admin", ["audit", *store, "--verify"], self.base, comment="hash-chained")

    def summary(self) -> None:
        self.say(f"\n{BOLD}== What you saw{RESET}")
        for line in (
            "CI kept no permanent secret: the pipeline got a token alice minted with MFA,",
            "  scoped to one secret; the command got the secret, masked, and no AWS credential.",
            "A leaked token read nothing else, and exploded on schedule.",
            "A sealed token opened once, in the run that asked for it, and nowhere else.",
            "A CI job's request, proven by its OIDC token, went through a relay that learned",
            "  nothing usable; alice's own xtok verified who asked before she approved.",
            "Revocation ended older sessions; the audit trail names who approved each read.",
        ):
            self.say(f"  {line}")
        self.say(
            "Approvers can also answer the relay's requests in a browser: xtok inbox --relay URL"
        )
        self.say("\nNext: try it yourself, on an endpoint of your own:")
        for line in NEXT:
            self.say(f"  {line}")
        self.say("Then the README: seed mode, sealed tokens, Jenkins, and AWS itself.")

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    def armored(output: str, kind: str) -> str:
        """The one line of `output` that is a token (or code) of `kind`."""
        (line,) = (x for x in output.splitlines() if x.startswith(kind + "."))
        return line

    @staticmethod
    def parse(token: str) -> Any:
        from xtok.tokens import token as tokens

        return tokens.parse(token)

    def raw(self, token: str) -> dict[str, str]:
        """The AWS keys inside a plain token, as an attacker who saw it would use them."""
        creds = self.parse(token)
        return {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key.reveal_text(),
            "SessionToken": creds.session_token.reveal_text(),
        }

    def close(self) -> None:
        import shutil

        self.stop_server()
        shutil.rmtree(self.tmp, ignore_errors=True)


def run(say: Callable[[str], None] = print) -> int:
    say("xtok demo: CI that keeps no permanent secret. Every command below runs for real and")
    say("is checked. Who types it: admin (sets up AWS), alice (approves runs), pipeline (the CI")
    say("job), attacker (holds a leaked token).")
    demo = Demo(say)
    try:
        for scene in demo.scenes:
            scene()
    finally:
        demo.close()
    return 0
