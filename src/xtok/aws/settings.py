"""Where the fetch goes, from the environment and the AWS config files, read as botocore reads them.

Only what decides the fetch's endpoint is taken: region, endpoint_url (also from a `services`
section), use_fips_endpoint, use_dualstack_endpoint, ca_bundle, ignore_configured_endpoint_urls.
A profile holding any setting this module does not know, a profile that does not exist or a file
that does not parse is left to botocore (`read` returns None), which then decides or explains.
tests/test_settings.py compares the answers with a botocore session's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

_ENDPOINT_KEYS = frozenset(
    {
        "region",
        "endpoint_url",
        "services",
        "use_fips_endpoint",
        "use_dualstack_endpoint",
        "ca_bundle",
        "ignore_configured_endpoint_urls",
    }
)
# Settings that cannot change where or how GetSecretValue is sent with the token's credentials:
# where a profile's own credentials come from, the aws CLI's output, and retries and timeouts,
# which xtok fixes for its clients.
_IRRELEVANT_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_account_id",
        "role_arn",
        "source_profile",
        "credential_source",
        "credential_process",
        "external_id",
        "mfa_serial",
        "role_session_name",
        "duration_seconds",
        "web_identity_token_file",
        "sso_session",
        "sso_account_id",
        "sso_role_name",
        "sso_region",
        "sso_start_url",
        "sso_registration_scopes",
        "output",
        "cli_pager",
        "cli_timestamp_format",
        "cli_binary_format",
        "cli_follow_urlparam",
        "cli_auto_prompt",
        "cli_history",
        "max_attempts",
        "retry_mode",
        "metadata_service_timeout",
        "metadata_service_num_attempts",
    }
)
SERVICE_KEY = "secrets_manager"  # botocore's snake-case service id, for AWS_ENDPOINT_URL_… too


@dataclass(frozen=True)
class Settings:
    region: str | None
    endpoint_url: str | None
    fips: bool
    dualstack: bool
    ca_bundle: str | None


def read(profile: str | None) -> Settings | None:
    """The settings for `profile` (None: AWS_DEFAULT_PROFILE, AWS_PROFILE, else default)."""
    env = os.environ
    name = profile or env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE")
    try:
        profiles, services = _profiles()
    except ValueError:
        return None
    if name is not None and name not in profiles:
        return None  # botocore's ProfileNotFound says it best
    scoped = profiles.get(name or "default", {})
    if not set(scoped) <= _ENDPOINT_KEYS | _IRRELEVANT_KEYS:
        return None

    def setting(key: str, variable: str) -> Any:
        return env[variable] if variable in env else scoped.get(key)

    url = None
    if not _true(setting("ignore_configured_endpoint_urls", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")):
        service: Any = {}
        if "services" in scoped:
            section = services.get(scoped["services"])
            if not section:
                return None  # botocore's InvalidConfigError
            service = section.get(SERVICE_KEY, {})
        url = (
            env.get(f"AWS_ENDPOINT_URL_{SERVICE_KEY.upper()}")
            or env.get("AWS_ENDPOINT_URL")
            or (service.get("endpoint_url") if isinstance(service, dict) else None)
            or scoped.get("endpoint_url")
        )
    return Settings(
        region=setting("region", "AWS_DEFAULT_REGION") or None,
        endpoint_url=url or None,
        fips=_true(setting("use_fips_endpoint", "AWS_USE_FIPS_ENDPOINT")),
        dualstack=_true(setting("use_dualstack_endpoint", "AWS_USE_DUALSTACK_ENDPOINT")),
        ca_bundle=setting("ca_bundle", "AWS_CA_BUNDLE") or None,
    )


def _true(value: Any) -> bool:
    """botocore's ensure_boolean."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _profiles() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """botocore's profile map (config file, then the credentials file merged in) and the
    config file's `services` sections. ValueError when a file does not parse."""
    env = os.environ
    profiles: dict[str, dict[str, Any]] = {}
    services: dict[str, dict[str, Any]] = {}
    for key, values in _parse(env.get("AWS_CONFIG_FILE") or "~/.aws/config").items():
        if key.startswith("profile"):
            profiles.update(_named(key, values))
        elif key.startswith("services"):
            services.update(_named(key, values))
        elif key == "default":
            profiles[key] = values
    credentials = env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    for key, values in _parse(credentials).items():
        profiles.setdefault(key, {}).update(values)
    return profiles, services


def _named(key: str, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`[profile NAME]` → {NAME: values}, split as botocore splits it (shlex)."""
    import shlex

    try:
        parts = shlex.split(key)
    except ValueError:
        return {}
    return {parts[1]: values} if len(parts) == 2 else {}


def _parse(path: str) -> dict[str, dict[str, Any]]:
    """An INI file as botocore's raw_config_parse reads it ({} when it is not a file)."""
    path = os.path.expanduser(os.path.expandvars(path))
    if not os.path.isfile(path):
        return {}
    import configparser

    parser = configparser.RawConfigParser()
    try:
        parser.read([path])
    except (configparser.Error, UnicodeDecodeError):
        raise ValueError(path) from None
    out: dict[str, dict[str, Any]] = {}
    for section in parser.sections():
        out[section] = {}
        for option in parser.options(section):
            value: Any = parser.get(section, option)
            if value.startswith("\n"):
                value = _nested(value)
            out[section][option] = value
    return out


def _nested(value: str) -> dict[str, str]:
    parsed = {}
    for line in value.splitlines():
        line = line.strip()
        if line:
            key, _, item = line.partition("=")
            if not _:
                raise ValueError(line)  # botocore: ConfigParseError
            parsed[key.strip()] = item.strip()
    return parsed
