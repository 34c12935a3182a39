"""The fetch reaches the Secrets Manager endpoint botocore would: every region of botocore's
partitions data (and a few it does not list), with FIPS and dual-stack on and off."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointResolutionError, EndpointVariantError, InvalidRegionError

from xtok.aws import fetch
from xtok.aws.session import AwsConfig
from xtok.errors import Error
from xtok.sensitive import Secret
from xtok.tokens.token import Credentials

BOTOCORE_DATA = Path(botocore.__file__).parent / "data"
PARTITIONS = json.loads((BOTOCORE_DATA / "partitions.json").read_text())["partitions"]
REGIONS = sorted({r for p in PARTITIONS for r in p["regions"]})
ONE_PER_PARTITION = sorted(
    min(r for r in p["regions"] if not r.endswith("-global")) for p in PARTITIONS
)
UNLISTED = ["us-gov-north-9", "eu-isoe-north-7", "cn-south-3", "xx-nowhere-1", "fips-us-east-1"]
INVALID = ["us_east_1", "-us-east-1", "123", "a" * 64, "us-east-1.evil.example"]
SETTINGS = [(False, False), (True, False), (False, True), (True, True)]


class _Sent(Exception):
    """Raised by the before-send hook: botocore built the request; nothing goes out."""


def sent_by(client: Any) -> str:
    """Where a botocore client sends GetSecretValue ("error" if it refuses)."""
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.url)
        raise _Sent

    client.meta.events.register("before-send", capture)
    try:
        client.get_secret_value(SecretId="x")
    except _Sent:
        return sent[0]
    except EndpointResolutionError:
        return "error"
    raise AssertionError("botocore sent nothing")


def botocore_endpoint(session: Any, region: str, fips: bool, dualstack: bool) -> str:
    try:
        client = session.create_client(
            "secretsmanager",
            region_name=region,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="example",
            config=Config(use_fips_endpoint=fips, use_dualstack_endpoint=dualstack),
        )
    except (InvalidRegionError, EndpointVariantError):
        return "error"
    return sent_by(client)


def ours(region: str, fips: bool, dualstack: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the fetch goes, through its own decision (fast path or a botocore client)."""
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", str(fips).lower())
    monkeypatch.setenv("AWS_USE_DUALSTACK_ENDPOINT", str(dualstack).lower())
    try:
        reader = fetch._reader(credentials(region), AwsConfig())
    except Error:
        return "error"
    if isinstance(reader, fetch._HttpReader):
        return reader.url
    assert fips or dualstack or "fips" in region  # only these leave the fast path
    return sent_by(reader.client)


def credentials(region: str | None) -> Credentials:
    return Credentials("AKIDEXAMPLE", Secret("example"), Secret("token"), region=region)


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "XTOK_")) or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="module")
def session() -> Any:
    sess = botocore.session.Session()
    sess.set_config_variable("config_file", os.devnull)
    return sess


def test_regions_cover_every_partition() -> None:
    assert {p["id"] for p in PARTITIONS} >= {"aws", "aws-cn", "aws-us-gov"}
    assert "us-gov-west-1" in REGIONS


@pytest.mark.parametrize("region", REGIONS + UNLISTED + INVALID)
def test_same_endpoint_as_botocore(
    session: Any, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for fips, dualstack in SETTINGS:
        expected = botocore_endpoint(session, region, fips, dualstack)
        assert ours(region, fips, dualstack, monkeypatch) == expected, (region, fips, dualstack)


@pytest.mark.parametrize("region", ONE_PER_PARTITION)
def test_the_profiles_fips_and_dualstack_settings_as_botocore(
    session: Any, region: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same settings from the profile (use_fips_endpoint, use_dualstack_endpoint), for a
    region of each partition (the region-by-region comparison above goes through the same
    decision with the settings from the environment)."""
    for fips, dualstack in SETTINGS[1:]:
        config = tmp_path / "config"
        config.write_text(
            f"[default]\nuse_fips_endpoint = {str(fips).lower()}\n"
            f"use_dualstack_endpoint = {str(dualstack).lower()}\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        try:
            reader = fetch._reader(credentials(region), AwsConfig())
            found = sent_by(reader.client)
        except Error:
            found = "error"
        expected = botocore_endpoint(session, region, fips, dualstack)
        assert found == expected, (region, fips, dualstack)


@pytest.mark.parametrize("region", [r for r in REGIONS if "fips" not in r])
def test_plain_regions_take_the_fast_path(region: str) -> None:
    assert isinstance(fetch._reader(credentials(region), AwsConfig()), fetch._HttpReader)


def test_the_profile_fips_setting_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile gov]\nregion = us-gov-west-1\nuse_fips_endpoint = true\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    reader = fetch._reader(credentials(None), AwsConfig(profile="gov"))
    assert sent_by(reader.client) == "https://secretsmanager-fips.us-gov-west-1.amazonaws.com/"
    monkeypatch.setenv("AWS_PROFILE", "gov")
    reader = fetch._reader(credentials(None), AwsConfig())
    assert sent_by(reader.client) == "https://secretsmanager-fips.us-gov-west-1.amazonaws.com/"


def test_a_custom_endpoint_wins_as_in_botocore(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert ours("us-gov-west-1", True, False, monkeypatch) == "http://127.0.0.1:4566/"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:4567/sm")
    assert ours("us-east-1", False, False, monkeypatch) == "http://127.0.0.1:4567/sm/"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert ours("us-east-1", False, False, monkeypatch) == botocore_endpoint(
        session, "us-east-1", False, False
    )


def test_govcloud_with_fips_reaches_the_fips_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case: before, the fetch silently went to the non-FIPS endpoint."""
    url = ours("us-gov-west-1", True, False, monkeypatch)
    assert url == "https://secretsmanager-fips.us-gov-west-1.amazonaws.com/"


def test_a_partition_without_fips_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partitions data (via AWS_DATA_PATH, as botocore's loader reads it) where GovCloud lacks
    FIPS: the fetch refuses, as botocore does, rather than fall back to a non-FIPS endpoint."""
    data = json.loads((BOTOCORE_DATA / "partitions.json").read_text())
    for partition in data["partitions"]:
        if partition["id"] == "aws-us-gov":
            partition["outputs"]["supportsFIPS"] = False
    (tmp_path / "partitions.json").write_text(json.dumps(data))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    fresh = botocore.session.Session()
    fresh.set_config_variable("config_file", os.devnull)
    assert botocore_endpoint(fresh, "us-gov-west-1", True, False) == "error"
    assert ours("us-gov-west-1", True, False, monkeypatch) == "error"
    assert ours("us-gov-west-1", False, False, monkeypatch) == botocore_endpoint(
        fresh, "us-gov-west-1", False, False
    )
