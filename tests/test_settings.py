"""The fetch reads the AWS config and credentials files as botocore does: for every case, its
settings equal a botocore session's, or it hands the case to botocore (and only the cases
listed as botocore's)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.configprovider import ConfiguredEndpointProvider
from botocore.exceptions import BotoCoreError

from xtok.aws import settings

BASE = """
[default]
region = eu-west-1
output = json

[profile ci]
region = us-east-1
endpoint_url = http://127.0.0.1:4566
mfa_serial = arn:aws:iam::123456789012:mfa/alice

[profile gov]
region = us-gov-west-1
use_fips_endpoint = true
ca_bundle = /etc/ssl/gov.pem

[profile dual]
region = eu-central-1
use_dualstack_endpoint = TRUE

[profile local]
services = dev
endpoint_url = http://127.0.0.1:1

[services dev]
secrets_manager =
  endpoint_url = http://127.0.0.1:4567
sts =
  endpoint_url = http://127.0.0.1:9

[profile ignoring]
endpoint_url = http://127.0.0.1:4566
ignore_configured_endpoint_urls = true

[profile odd]
region = us-west-2
s3 =
  addressing_style = path

[profile broken-services]
services = nosuch

[profiles plural]
region = ap-south-1

[profile "quoted name"]
region = sa-east-1
"""
CREDENTIALS = """
[ci]
aws_access_key_id = AKIAEXAMPLEEXAMPLE0
aws_secret_access_key = example

[creds-only]
aws_access_key_id = AKIAEXAMPLEEXAMPLE1
aws_secret_access_key = example
region = ca-central-1
"""

# (profile argument, environment) -> whether botocore must decide (None: xtok reads it)
CASES: list[tuple[str | None, dict[str, str], bool]] = [
    (None, {}, False),
    ("ci", {}, False),
    (None, {"AWS_PROFILE": "ci"}, False),
    (None, {"AWS_DEFAULT_PROFILE": "gov", "AWS_PROFILE": "ci"}, False),
    ("gov", {}, False),
    ("gov", {"AWS_USE_FIPS_ENDPOINT": "false", "AWS_CA_BUNDLE": "/x.pem"}, False),
    ("dual", {}, False),
    ("local", {}, False),
    ("local", {"AWS_ENDPOINT_URL": "http://127.0.0.1:2"}, False),
    ("local", {"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:3"}, False),
    ("ignoring", {}, False),
    ("ci", {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, False),
    ("ci", {"AWS_DEFAULT_REGION": "eu-north-1"}, False),
    ("creds-only", {}, False),
    ("plural", {}, False),
    ("quoted name", {}, False),
    ("odd", {}, True),  # an s3 setting xtok does not interpret
    ("broken-services", {}, True),
    ("nosuch", {}, True),
    (None, {"AWS_PROFILE": "nosuch"}, True),
]


def botocores(profile: str | None) -> settings.Settings | str:
    sess = botocore.session.Session(profile=profile)
    try:
        get = sess.get_config_variable
        url = None
        if not get("ignore_configured_endpoint_urls"):
            url = ConfiguredEndpointProvider(
                sess.full_config, sess.get_scoped_config(), "secretsmanager"
            ).provide()
        return settings.Settings(
            region=get("region") or None,
            endpoint_url=url,
            fips=bool(get("use_fips_endpoint")),
            dualstack=bool(get("use_dualstack_endpoint")),
            ca_bundle=get("ca_bundle"),
        )
    except BotoCoreError as exc:
        return type(exc).__name__


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    (tmp_path / "config").write_text(BASE)
    (tmp_path / "credentials").write_text(CREDENTIALS)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return tmp_path


@pytest.mark.parametrize(("profile", "env", "delegated"), CASES)
def test_same_settings_as_botocore(
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
    profile: str | None,
    env: dict[str, str],
    delegated: bool,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ours = settings.read(profile)
    if delegated:
        assert ours is None
    else:
        assert ours == botocores(profile)


def test_a_file_that_does_not_parse_goes_to_botocore(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files / "config").write_text("[default]\nregion = eu-west-1\n[broken\n")
    assert settings.read(None) is None
    assert botocores(None) == "ConfigParseError"


def test_no_files_at_all(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(files / "absent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(files / "absent"))
    expected: Any = botocores(None)
    assert settings.read(None) == expected
    assert expected == settings.Settings(None, None, False, False, None)
