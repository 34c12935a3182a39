"""Which CI run is asking: detected from Jenkins', GitHub Actions' and GitLab CI's standard
environment variables, each field overridable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class RunIdentity:
    ci: str = "local"
    job: str | None = None
    build: str | None = None
    url: str | None = None
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunIdentity:
        fields = ("ci", "job", "build", "url", "commit")
        return cls(**{k: str(data[k]) for k in fields if isinstance(data.get(k), str | int)})

    @property
    def label(self) -> str:
        """`job #build`, for session names and tags."""
        return " #".join(p for p in (self.job, self.build) if p) or self.ci


def detect(env: Mapping[str, str]) -> RunIdentity:
    if env.get("JENKINS_URL") or env.get("JENKINS_HOME"):
        return RunIdentity(
            "jenkins",
            env.get("JOB_NAME"),
            env.get("BUILD_NUMBER"),
            env.get("BUILD_URL"),
            env.get("GIT_COMMIT"),
        )
    if env.get("GITHUB_ACTIONS") == "true":
        repo, run_id = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        url = f"{server}/{repo}/actions/runs/{run_id}" if repo and run_id else None
        job = "/".join(p for p in (repo, env.get("GITHUB_WORKFLOW"), env.get("GITHUB_JOB")) if p)
        return RunIdentity(
            "github-actions", job or None, env.get("GITHUB_RUN_NUMBER"), url, env.get("GITHUB_SHA")
        )
    if env.get("GITLAB_CI") == "true":
        job = "/".join(p for p in (env.get("CI_PROJECT_PATH"), env.get("CI_JOB_NAME")) if p)
        return RunIdentity(
            "gitlab-ci",
            job or None,
            env.get("CI_PIPELINE_IID") or env.get("CI_JOB_ID"),
            env.get("CI_JOB_URL"),
            env.get("CI_COMMIT_SHA"),
        )
    return RunIdentity()


def identify(env: Mapping[str, str], **overrides: str | None) -> RunIdentity:
    """The detected identity with any non-None override applied."""
    return replace(detect(env), **{k: v for k, v in overrides.items() if v is not None})
