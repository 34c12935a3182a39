"""The GitHub Action and the GitLab template, run here: their YAML validated against the
published schemas (check-jsonschema's built-in copies, offline), and their shell steps run with
the environment each runner documents, against a real relay and the OIDC issuer stand-in, up to
the masked output of the approved command. GitHub and GitLab themselves cannot run here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from conftest import ACCOUNT, CANARY, ROOT, Result, aws_env, run_xtok
from relay_support import ADMIN_ARN, RelayProc, start_relay

from xtok.approval import relay_client
from xtok.approval.oidc_standin import Issuer
from xtok.aws.session import AwsConfig
from xtok.server.bootstrap import clean_environment, spawn_dev

GITHUB = ROOT / "integrations" / "github"
GITLAB = ROOT / "integrations" / "gitlab"
BIN = str(Path(sys.executable).parent)  # where the installed `xtok` is: the install is skipped


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("vendor.github-actions", GITHUB / "action.yml"),
        ("vendor.github-workflows", GITHUB / "example-workflow.yml"),
        ("vendor.gitlab-ci", GITLAB / "xtok.gitlab-ci.yml"),
        ("vendor.gitlab-ci", GITLAB / "example.gitlab-ci.yml"),
    ],
)
def test_files_match_their_published_schemas(schema: str, path: Path) -> None:
    assert validate(schema, path).returncode == 0


def test_the_schema_check_catches_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    action = yaml.safe_load((GITHUB / "action.yml").read_text())
    action["runs"]["steps"][0].pop("shell")  # composite run steps must name their shell
    broken.write_text(yaml.safe_dump(action))
    assert validate("vendor.github-actions", broken).returncode != 0


def validate(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(tool), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- running the steps ------------------------------------------------------------------------


class World:
    """A dev endpoint holding prod/db and prod/api, the role the examples name, a relay that
    trusts the OIDC stand-in, and an approver who answers whatever is posted."""

    def __init__(self, tmp: Path, issuer: Issuer) -> None:
        self.issuer = issuer
        self.proc, exports = spawn_dev("--min-duration", "1")
        self.url = exports["AWS_ENDPOINT_URL"]
        self.admin_env = {
            **aws_env(self.url, exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]),
            "XTOK_APPROVER_CONFIG": str(tmp / "approver.toml"),
            "XDG_STATE_HOME": str(tmp / "approver-state"),
        }
        (tmp / "approver.toml").write_text(f'[oidc]\nissuers = ["{issuer.url}"]\n')
        for name, value in (("prod/db", json.dumps({"password": CANARY})), ("prod/api", "api-v")):
            assert run_xtok(["secret", "put", name], self.admin_env, stdin=value).code == 0
        setup = "setup aws --role-name xtok-deploy --unsafe-no-mfa --prefix prod/ --trust"
        res = run_xtok([*setup.split(), ADMIN_ARN], self.admin_env)
        assert res.code == 0, res.err
        self.relay: RelayProc = start_relay(tmp / "relay", self.url, issuer.url)

    def approve_next(self) -> threading.Thread:
        """In the background: wait for one pending request, then approve it as the admin."""
        seen: dict[str, Any] = {}

        def work() -> None:
            client = relay_client.Relay(self.relay.url)
            with mock.patch.dict(os.environ, self.admin_env):
                client.login(AwsConfig())
            for _ in range(300):
                pending = client.pending()
                if pending:
                    rid = str(pending[0]["id"])
                    seen["result"] = run_xtok(
                        ["approve", "--relay", self.relay.url, "--pick", rid, "--yes"],
                        self.admin_env,
                    )
                    return
                time.sleep(0.1)

        thread = threading.Thread(target=work, daemon=True)
        thread.seen = seen  # type: ignore[attr-defined]
        thread.start()
        return thread

    def close(self) -> None:
        for proc in (self.relay.proc, self.proc):
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with Issuer().running() as issuer:
        made = World(tmp_path_factory.mktemp("ci"), issuer)
        yield made
        made.close()


def runner_env(tmp: Path, **extra: str) -> dict[str, str]:
    """What every runner gives a job: no AWS credentials; xtok on PATH."""
    env = clean_environment()
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        HOME=str(tmp),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def run_script(script: str, env: dict[str, str], world: World) -> Result:
    approver = world.approve_next()
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    approver.join(timeout=60)
    approved = approver.seen.get("result")  # type: ignore[attr-defined]
    assert approved is not None and approved.code == 0, approved and approved.err
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert CANARY not in result.both and "Traceback" not in result.err
    return result


def _expand(value: str, inputs: dict[str, str]) -> str:
    """GitHub's `${{ inputs.NAME }}` expressions: the only ones the action uses."""

    def one(match: re.Match[str]) -> str:
        return inputs[match.group(1)]

    out = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", one, value)
    assert "${{" not in out, f"unsupported expression in {value!r}"
    return out


def test_github_action_steps_end_to_end(world: World, tmp_path: Path) -> None:
    action = yaml.safe_load((GITHUB / "action.yml").read_text())
    inputs = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    inputs.update(
        relay=world.relay.url,
        role=f"arn:aws:iam::{ACCOUNT}:role/xtok-deploy",
        secrets="DB_PASSWORD=prod/db#password\n  API_TOKEN=prod/api\n",
        command='echo "db=$DB_PASSWORD api=$API_TOKEN"',
        **{"endpoint-url": world.url},
    )
    summary, path_file = tmp_path / "summary.md", tmp_path / "path"
    env = runner_env(
        tmp_path,
        GITHUB_ACTIONS="true",
        GITHUB_REPOSITORY="acme/app",
        GITHUB_WORKFLOW="deploy",
        GITHUB_JOB="deploy",
        GITHUB_RUN_ID="77",
        GITHUB_RUN_NUMBER="12",
        GITHUB_SHA="0badc0ffee",
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_PATH=str(path_file),
        RUNNER_TEMP=str(tmp_path),
        **world.issuer.github_env(),
    )
    steps = action["runs"]["steps"]
    install, request_and_run = steps
    step_env = {k: _expand(str(v), inputs) for k, v in install["env"].items()}
    installed = subprocess.run(
        ["bash", "-e", "-c", install["run"]], env={**env, **step_env}, check=False
    )
    assert installed.returncode == 0 and not path_file.exists()  # xtok was on PATH already
    step_env = {k: _expand(str(v), inputs) for k, v in request_and_run["env"].items()}
    result = run_script(request_and_run["run"], {**env, **step_env}, world)
    assert result.code == 0, result.err
    assert "db=*** api=***" in result.out
    assert "proven by the CI's OIDC token" in result.err
    assert "::warning::" not in result.out
    text = summary.read_text()
    assert f"xtok approve --relay {world.relay.url} --pick" in text


def test_gitlab_template_and_example_end_to_end(world: World, tmp_path: Path) -> None:
    template = yaml.safe_load((GITLAB / "xtok.gitlab-ci.yml").read_text())[".xtok"]
    example = yaml.safe_load((GITLAB / "example.gitlab-ci.yml").read_text())
    job = example["deploy"]
    assert job["extends"] == ".xtok"
    assert template["id_tokens"]["XTOK_OIDC_TOKEN"]["aud"] == "xtok"
    # What GitLab puts in the job: its predefined variables, the ID token the template asks
    # for (signed by the stand-in issuer, audience as the template fixes it), the template's
    # and the job's variables; the deployment's relay and endpoint replace the example's.
    token = world.issuer.token(
        template["id_tokens"]["XTOK_OIDC_TOKEN"]["aud"],
        sub="project_path:acme/app:ref_type:branch:ref:main",
        project_path="acme/app",
        ref="main",
    )
    env = runner_env(
        tmp_path,
        GITLAB_CI="true",
        CI_PROJECT_PATH="acme/app",
        CI_JOB_NAME="deploy",
        CI_PIPELINE_IID="5",
        CI_JOB_URL="https://gitlab.example/acme/app/-/jobs/9",
        CI_COMMIT_SHA="0badc0ffee",
        CI_COMMIT_BRANCH="main",
        XTOK_OIDC_TOKEN=token,
        **{k: str(v) for k, v in template["variables"].items()},
        **{k: str(v) for k, v in job["variables"].items()},
    )
    env.update(XTOK_RELAY_URL=world.relay.url, AWS_ENDPOINT_URL=world.url, AWS_REGION="us-east-1")
    script = "\n".join([*template["before_script"], *job["script"]]).replace(
        "./deploy.sh", "sh -c 'echo \"db=$DB_PASSWORD api=$API_TOKEN\"'"
    )
    result = run_script(script, env, world)
    assert result.code == 0, result.err
    assert "db=*** api=***" in result.out
    assert "proven by the CI's OIDC token" in result.err
