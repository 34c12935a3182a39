"""`xtok demo`: the whole flow, narrated, against a dev endpoint in a subprocess.

Every step runs the real `xtok` command line (shown as typed) or, where the demo plays a person
or an attacker, boto3 against the same endpoint. The demo checks what it shows and exits
non-zero if anything behaves otherwise.
"""

from __future__ import annotations

import base64
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xtok.errors import Error
from xtok.server.bootstrap import clean_environment, spawn_dev
from xtok.server.crypto import encode_key, new_key, write_private
from xtok.server.totp import code_at

ROLE = "xtok-ci"
SECRET_NAME = "/prod/exampleCredential"  # noqa: S105 - a name, not a value
OTHER_NAME = "/prod/other"
BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"


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

    # --- plumbing ---------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.say(f"\n{BOLD}== {title}{RESET}")

    def xtok(
        self,
        args: Sequence[str],
        env: dict[str, str],
        *,
        stdin: str | None = None,
        expect: int = 0,
        shown: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        self.say(f"{DIM}$ {shown or 'xtok ' + shlex.join(args)}{RESET}")
        proc = subprocess.run(
            [sys.executable, "-m", "xtok", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for line in (proc.stdout + proc.stderr).splitlines():
            if line.startswith("xtok") and "." in line[:8]:  # a token: never shown, even in part
                line = line[: line.index(".") + 1] + f"… ({len(line)} characters)"
            elif len(line) >= 160:
                line = line[:60] + f"… ({len(line)} characters)"
            self.say("  " + line)
        if proc.returncode != expect:
            raise DemoFailed(f"`xtok {args[0]}` exited {proc.returncode}, expected {expect}")
        return proc

    def client(self, service: str, creds: dict[str, str], **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.admin["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds.get("SessionToken"),
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def env_for(self, creds: dict[str, str]) -> dict[str, str]:
        env = {
            **self.admin,
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        }
        if "SessionToken" in creds:
            env["AWS_SESSION_TOKEN"] = creds["SessionToken"]
        return env

    def start_server(self) -> None:
        from xtok.approval.oidc_standin import Issuer

        self.ci = Issuer()  # plays GitHub's OIDC issuer: the dev relay trusts it
        self.server, exports = spawn_dev(
            "--data",
            str(self.data),
            "--master-key-file",
            str(self.key_file),
            "--min-duration",
            "5",
            env={"XTOK_RELAY_ISSUERS": self.ci.url},
        )
        self.admin = {**self.base, **exports}
        self.say(f"  dev endpoint on {self.admin['AWS_ENDPOINT_URL']} (admin keys exported)")

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=30)

    def denied(self, call: Callable[[], Any], code: str) -> None:
        from botocore.exceptions import ClientError

        try:
            call()
        except ClientError as exc:
            got = exc.response["Error"]["Code"]
            self.say(f"  → refused by the endpoint: {got}")
            if got != code:
                raise DemoFailed(f"expected {code}, got {got}") from None
            return
        raise DemoFailed(f"expected {code}, but the call succeeded")

    # --- the story --------------------------------------------------------------------------

    def run(self) -> None:
        self.step("0. Start a local AWS-compatible endpoint (xtok server --dev)")
        self.start_server()
        admin = {
            "AccessKeyId": self.admin["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": self.admin["AWS_SECRET_ACCESS_KEY"],
        }

        self.step("1. An admin stores the permanent secret (from stdin, never argv)")
        self.xtok(
            ["secret", "put", SECRET_NAME, "--description", "the write-up's credential"],
            self.admin,
            stdin=secrets.token_urlsafe(18),
        )
        self.xtok(["secret", "put", OTHER_NAME], self.admin, stdin=secrets.token_urlsafe(18))

        self.step("2. Alice, the approver, gets keys and a virtual MFA device")
        iam = self.client("iam", admin)
        iam.create_user(UserName="alice")
        alice_keys = iam.create_access_key(UserName="alice")["AccessKey"]
        device = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]
        seed = base64.b32decode(device["Base32StringSeed"])
        serial = device["SerialNumber"]
        now = time.time()
        iam.enable_mfa_device(
            UserName="alice",
            SerialNumber=serial,
            AuthenticationCode1=code_at(seed, now - 30),
            AuthenticationCode2=code_at(seed, now),
        )
        self.say(f"  user alice, MFA device {serial} (the demo plays her authenticator app)")

        self.step("3. The admin creates the role approvers assume: alice only, with MFA")
        account = self.client("sts", admin).get_caller_identity()["Account"]
        role_arn = f"arn:aws:iam::{account}:role/{ROLE}"
        self.xtok(
            [
                "setup",
                "aws",
                "--role-name",
                ROLE,
                "--trust",
                f"arn:aws:iam::{account}:user/alice",
                "--prefix",
                "/prod/",
            ],
            self.admin,
        )

        self.step("4. Without MFA, alice's own keys cannot assume the role")
        keys = {
            "AccessKeyId": alice_keys["AccessKeyId"],
            "SecretAccessKey": alice_keys["SecretAccessKey"],
        }
        self.xtok(
            ["token", "--role", role_arn, "--secret", SECRET_NAME], self.env_for(keys), expect=204
        )

        self.step("5. Alice signs in with MFA and approves deploy #42: a 15-minute token")
        alice = dict(
            self.client("sts", keys).get_session_token(
                DurationSeconds=3600, SerialNumber=serial, TokenCode=code_at(seed, time.time() + 30)
            )["Credentials"]
        )
        token = self.xtok(
            ["token", "--role", role_arn, "--secret", SECRET_NAME, "--for", "deploy #42"],
            self.env_for(alice),
        ).stdout.strip()
        self.xtok(["inspect", "-"], self.base, stdin=token, shown="xtok inspect - <<< $TOKEN")

        self.step("6. The pipeline step runs with the secret; its output is masked")
        step_env = {
            **self.base,
            "XTOK_TOKEN": token,
            "AWS_ENDPOINT_URL": self.admin["AWS_ENDPOINT_URL"],
            "AWS_REGION": "us-east-1",
        }
        script = (
            'echo "deploying with EXAMPLE_CREDENTIAL=$EXAMPLE_CREDENTIAL"; '
            'env | grep -q "^AWS_" && echo "AWS variables leaked" || echo "no AWS_* here"'
        )
        step = self.xtok(
            ["run", "--secret", f"EXAMPLE_CREDENTIAL={SECRET_NAME}", "--", "sh", "-c", script],
            step_env,
        )
        if "EXAMPLE_CREDENTIAL=***" not in step.stdout or "leaked" in step.stdout:
            raise DemoFailed("the step's output was not masked, or saw AWS variables")

        self.step("7. The token's credentials cannot read a secret outside its scope")
        from xtok.tokens import token as tokens

        creds = tokens.parse(token)
        raw = {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key.reveal_text(),
            "SessionToken": creds.session_token.reveal_text(),
        }
        self.say(
            f"{DIM}$ aws secretsmanager get-secret-value --secret-id {OTHER_NAME}   "
            f"# with the token's credentials{RESET}"
        )
        self.denied(
            lambda: self.client("secretsmanager", raw).get_secret_value(SecretId=OTHER_NAME),
            "AccessDeniedException",
        )

        self.step("8. A token explodes: a 5-second session (dev mode allows it), 6 s later")
        sts = self.client("sts", alice, parameter_validation=False)
        short = sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName="short-demo",
            DurationSeconds=5,
            Policy=_session_policy(),
        )["Credentials"]
        short_token = tokens.encode(tokens.parse(_as_json(short)))
        short_env = {**step_env, "XTOK_TOKEN": short_token}
        self.xtok(
            ["run", "--min-ttl", "0", "--secret", f"C={SECRET_NAME}", "--", "true"], short_env
        )
        time.sleep(6)
        self.xtok(
            ["run", "--min-ttl", "0", "--secret", f"C={SECRET_NAME}", "--", "true"],
            short_env,
            expect=202,
        )
        self.say(
            f"{DIM}$ aws secretsmanager get-secret-value ...   # the expired credentials{RESET}"
        )
        self.denied(
            lambda: self.client("secretsmanager", dict(short)).get_secret_value(
                SecretId=SECRET_NAME
            ),
            "ExpiredTokenException",
        )

        self.step("9. Revoke: every session of the role issued before now is denied")
        time.sleep(1.1)  # aws:TokenIssueTime has one-second resolution
        self.xtok(["revoke", "--role", ROLE], self.admin)
        self.xtok(["run", "--secret", f"C={SECRET_NAME}", "--", "true"], step_env, expect=204)
        time.sleep(1.1)
        fresh = self.xtok(
            ["token", "--role", role_arn, "--secret", SECRET_NAME, "--for", "deploy #43"],
            self.env_for(alice),
        ).stdout.strip()
        self.xtok(
            ["run", "--secret", f"C={SECRET_NAME}", "--", "echo", "a new session works"],
            {**step_env, "XTOK_TOKEN": fresh},
        )

        self.scene_relay(role_arn, alice)

        self.step("11. The audit trail: who did what, allowed or not (never a value)")
        self.stop_server()
        store = ["--data", str(self.data), "--master-key-file", str(self.key_file)]
        trail = subprocess.run(
            [sys.executable, "-m", "xtok", "audit", *store],
            env=self.base,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        interesting = [
            line
            for line in trail.splitlines()
            if "AssumeRole" in line
            or "GetSecretValue" in line
            or "Revoke" in line
            or "PutRolePolicy" in line
        ]
        self.say(f"{DIM}$ xtok audit{RESET}  (AssumeRole, GetSecretValue, PutRolePolicy rows)")
        for line in interesting:
            self.say("  " + line)
        self.xtok(["audit", *store, "--verify"], self.base, shown="xtok audit --verify")

    def scene_relay(self, role_arn: str, alice: dict[str, str]) -> None:
        """A GitHub Actions job asks through the relay, proven by its OIDC token; alice's own
        xtok verifies the proof, approves, and the job runs: no code to copy, no key on disk."""
        self.step("10. Approvals anywhere: a GitHub Actions job asks through the relay")
        relay = self.admin["AWS_ENDPOINT_URL"] + "/relay"
        self.say(f"  the dev endpoint serves a relay on {relay}; a stand-in plays GitHub's OIDC")
        with self.ci.running():
            job = {
                **self.base,
                "AWS_ENDPOINT_URL": self.admin["AWS_ENDPOINT_URL"],
                "AWS_REGION": "us-east-1",
                "GITHUB_ACTIONS": "true",
                "GITHUB_REPOSITORY": "acme/app",
                "GITHUB_WORKFLOW": "deploy",
                "GITHUB_JOB": "prod",
                "GITHUB_RUN_ID": "77",
                "GITHUB_RUN_NUMBER": "44",
                "GITHUB_SHA": "0badc0ffee",
                **self.ci.github_env(),
            }
            args = ["run", "--relay", relay, "--secret", f"EXAMPLE_CREDENTIAL={SECRET_NAME}"]
            args += [
                "--role",
                role_arn,
                "--",
                "sh",
                "-c",
                'echo "deployed with $EXAMPLE_CREDENTIAL"',
            ]
            self.say(f"{DIM}$ xtok {shlex.join(args)}   # in the job{RESET}")
            run = subprocess.Popen(
                [sys.executable, "-m", "xtok", *args],
                env=job,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            posted = ""
            while "--pick" not in posted:
                line = run.stderr.readline() if run.stderr else ""
                if not line:
                    raise DemoFailed("the job did not post its request")
                self.say("  " + line.rstrip())
                posted += line
            rid = posted.rsplit("--pick ", 1)[1].split()[0]
            config = self.tmp / "approver.toml"
            config.write_text(f'[oidc]\nissuers = ["{self.ci.url}"]\n')
            approver = {
                **self.env_for(alice),
                "XTOK_APPROVER_CONFIG": str(config),
                "XDG_STATE_HOME": str(self.tmp / "alice-state"),
            }
            self.say("  alice logs in to the relay with a signed GetCallerIdentity (no new secret)")
            self.xtok(["approve", "--relay", relay], approver)
            shown = self.xtok(["approve", "--relay", relay, "--pick", rid, "--yes"], approver)
            if "VERIFIED by" not in shown.stderr:
                raise DemoFailed("the approve screen did not show a verified identity")
            out, err = run.communicate(timeout=120)
        for line in (out + err).splitlines():
            self.say("  " + line)
        if run.returncode != 0 or "deployed with ***" not in out:
            raise DemoFailed("the job did not run with the approved, masked secret")

    def close(self) -> None:
        import shutil

        self.stop_server()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _session_policy() -> str:
    from xtok.aws.policy import Target, compact, session_policy

    return compact(session_policy(Target((SECRET_NAME,))))


def _as_json(creds: dict[str, Any]) -> str:
    import json

    return json.dumps({"Credentials": {**creds, "Expiration": creds["Expiration"].isoformat()}})


def run(say: Callable[[str], None] = print) -> int:
    demo = Demo(say)
    try:
        demo.run()
    finally:
        demo.close()
    say(f"\n{BOLD}Done:{RESET} CI kept no permanent secret; the approval exploded on schedule.")
    say("Approvers can also review and answer in a browser: xtok inbox --relay URL")
    return 0
