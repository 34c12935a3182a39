"""Principals and sessions on the real local endpoint (`xtok server`, boto3 over loopback): paths
in ARNs, session policies on role chaining, sessions bound to unique ids, MFA time steps and
revocation within one second. AWS's semantics and sources: docs/aws-semantics.md."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import Peer, make_peer

from xtok.aws.policy import REVOKE_POLICY_NAME, revoke_policy
from xtok.server.db import Database
from xtok.server.totp import STEP, code_at

ACCOUNT = "123456789012"


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Peer:
    return make_peer(request, "xtok-server")


def error(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def code(call: Callable[[], Any]) -> str:
    return str(error(call).response["Error"]["Code"])


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str, resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def trust(principal: str) -> str:
    return doc({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"})


def user(peer: Peer, name: str, *statements: dict[str, Any], path: str = "/") -> dict[str, str]:
    iam = peer.client("iam")
    iam.create_user(UserName=name, Path=path)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def role(
    peer: Peer, name: str, principal: str, *statements: dict[str, Any], path: str = "/"
) -> str:
    iam = peer.client("iam")
    arn = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=trust(principal))
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(*statements))
    return str(arn["Role"]["Arn"])


def admin_arn(peer: Peer) -> str:
    return str(peer.client("sts").get_caller_identity()["Arn"])


def assume(peer: Peer, creds: dict[str, str] | None, arn: str, **extra: Any) -> dict[str, str]:
    sts = peer.client("sts", creds)
    return dict(sts.assume_role(RoleArn=arn, RoleSessionName="job-1", **extra)["Credentials"])


def test_a_deny_on_a_path_applies_to_users_and_roles_under_it(peer: Peer, unique: str) -> None:
    """`user/admins/*` and `role/protected/*` name the resources whose ARNs carry that path."""
    iam = peer.client("iam")
    iam.create_user(UserName=f"boss-{unique}", Path=f"/admins-{unique}/")
    guarded = role(peer, f"guard-{unique}", admin_arn(peer), path=f"/protected-{unique}/")
    ops = user(
        peer,
        f"ops-{unique}",
        allow("iam:*"),
        allow("sts:AssumeRole"),
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": [
                f"arn:aws:iam::{ACCOUNT}:user/admins-{unique}/*",
                f"arn:aws:iam::{ACCOUNT}:role/protected-{unique}/*",
            ],
        },
    )
    iam.update_assume_role_policy(
        RoleName=f"guard-{unique}",
        PolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/ops-{unique}"),
    )
    as_ops = peer.client("iam", ops)
    calls: list[Callable[[], Any]] = [
        lambda: as_ops.create_access_key(UserName=f"boss-{unique}"),
        lambda: as_ops.put_user_policy(
            UserName=f"boss-{unique}", PolicyName="x", PolicyDocument=doc(allow("*"))
        ),
        lambda: as_ops.update_assume_role_policy(
            RoleName=f"guard-{unique}", PolicyDocument=trust("*")
        ),
        lambda: assume(peer, ops, guarded),
    ]
    for call in calls:
        assert code(call) == "AccessDenied"
    # Outside the path the same caller is allowed: the Deny is what refused.
    iam.create_user(UserName=f"plain-{unique}")
    as_ops.create_access_key(UserName=f"plain-{unique}")


def test_role_arn_with_another_path_is_not_the_role(peer: Peer, unique: str) -> None:
    arn = role(peer, f"pathy-{unique}", admin_arn(peer), allow("*"), path=f"/team-{unique}/")
    assert arn == f"arn:aws:iam::{ACCOUNT}:role/team-{unique}/pathy-{unique}"
    assume(peer, None, arn)
    for wrong in (
        f"arn:aws:iam::{ACCOUNT}:role/pathy-{unique}",
        f"arn:aws:iam::{ACCOUNT}:role/other/pathy-{unique}",
        f"arn:aws-cn:iam::{ACCOUNT}:role/team-{unique}/pathy-{unique}",
    ):
        assert code(lambda w=wrong: assume(peer, None, w)) == "AccessDenied"


def test_a_session_policy_limits_role_chaining(peer: Peer, unique: str) -> None:
    """A session scoped to one secret cannot assume a role that trusts its role's ARN; only a
    trust naming the session's own ARN is outside the session policy."""
    sm = peer.client("secretsmanager")
    for name in ("in", "out"):
        sm.create_secret(Name=f"chain-{unique}/{name}", SecretString="v")
    first = role(peer, f"first-{unique}", admin_arn(peer), allow("sts:AssumeRole"), allow("*"))
    second = role(peer, f"second-{unique}", first, allow("secretsmanager:*"))
    scoped = doc(
        allow(
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:*:*:secret:chain-{unique}/in-??????",
        )
    )
    session = assume(peer, None, first, Policy=scoped)
    read = peer.client("secretsmanager", session)
    read.get_secret_value(SecretId=f"chain-{unique}/in")
    assert code(lambda: read.get_secret_value(SecretId=f"chain-{unique}/out")).startswith(
        "AccessDenied"
    )
    assert code(lambda: assume(peer, session, second)) == "AccessDenied"
    # Without a session policy the chain is allowed (the trust names the first role).
    assume(peer, assume(peer, None, first), second)
    # A trust that names the session itself is outside the session policy.
    own = f"arn:aws:sts::{ACCOUNT}:assumed-role/first-{unique}/job-1"
    third = role(peer, f"third-{unique}", own, allow("secretsmanager:*"))
    assume(peer, session, third)


def test_a_role_session_dies_with_its_role_and_is_not_revived(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    peer.client("secretsmanager").create_secret(Name=f"uid-{unique}", SecretString="v")
    arn = role(peer, f"uid-{unique}", admin_arn(peer), allow("secretsmanager:GetSecretValue"))
    old = peer.client("secretsmanager", assume(peer, None, arn))
    old.get_secret_value(SecretId=f"uid-{unique}")
    iam.delete_role_policy(RoleName=f"uid-{unique}", PolicyName="p")
    iam.delete_role(RoleName=f"uid-{unique}")
    assert code(lambda: old.get_secret_value(SecretId=f"uid-{unique}")) == (
        "UnrecognizedClientException"
    )
    role(peer, f"uid-{unique}", admin_arn(peer), allow("secretsmanager:GetSecretValue"))
    assert code(lambda: old.get_secret_value(SecretId=f"uid-{unique}")) == (
        "UnrecognizedClientException"
    )
    fresh = peer.client("secretsmanager", assume(peer, None, arn))
    fresh.get_secret_value(SecretId=f"uid-{unique}")


def test_a_user_session_dies_with_its_user_and_is_not_revived(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    name = f"gst-{unique}"
    keys = user(peer, name, allow("sts:GetCallerIdentity"))
    session = peer.client("sts", keys).get_session_token(DurationSeconds=900)["Credentials"]
    old = peer.client("sts", session)
    assert old.get_caller_identity()["Arn"].endswith(f":user/{name}")
    iam.delete_access_key(UserName=name, AccessKeyId=keys["AccessKeyId"])
    iam.delete_user_policy(UserName=name, PolicyName="p")
    iam.delete_user(UserName=name)
    assert code(old.get_caller_identity) == "InvalidClientTokenId"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(allow("*")))
    assert code(old.get_caller_identity) == "InvalidClientTokenId"


def test_mfa_time_steps_only_move_forward(peer: Peer, unique: str) -> None:
    """Every use of the device (EnableMFADevice, GetSessionToken, AssumeRole) must present a
    time step after the last one accepted, within one step of clock drift."""
    iam = peer.client("iam")
    name = f"step-{unique}"
    keys = user(peer, name, allow("sts:*"))
    arn = role(peer, name, f"arn:aws:iam::{ACCOUNT}:user/{name}")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    serial, seed = device["SerialNumber"], base64.b32decode(device["Base32StringSeed"])
    now = time.time()
    at = {k: code_at(seed, now + k * STEP) for k in (-1, 0, 1)}
    if len(set(at.values())) < 3:
        pytest.skip("two neighbouring TOTP steps share a code (one in 10^6)")
    iam.enable_mfa_device(
        UserName=name, SerialNumber=serial, AuthenticationCode1=at[-1], AuthenticationCode2=at[0]
    )
    sts = peer.client("sts", keys)
    denied = "AccessDenied"
    # An earlier step than the last accepted one (it is within the drift window).
    assert code(lambda: sts.get_session_token(SerialNumber=serial, TokenCode=at[-1])) == denied
    sts.assume_role(RoleArn=arn, RoleSessionName="mfa", SerialNumber=serial, TokenCode=at[1])
    assert code(lambda: sts.get_session_token(SerialNumber=serial, TokenCode=at[0])) == denied
    iam.deactivate_mfa_device(UserName=name, SerialNumber=serial)
    assert (
        code(
            lambda: iam.enable_mfa_device(
                UserName=name,
                SerialNumber=serial,
                AuthenticationCode1=at[0],
                AuthenticationCode2=at[1],
            )
        )
        == "InvalidAuthenticationCode"
    )


def test_revoke_in_the_same_second_denies_older_sessions_only(peer: Peer, unique: str) -> None:
    sm = peer.client("secretsmanager")
    sm.create_secret(Name=f"same-{unique}", SecretString="v")
    name = f"same-{unique}"
    arn = role(peer, name, admin_arn(peer), allow("secretsmanager:GetSecretValue"))
    time.sleep(1.05 - time.time() % 1)  # start of a second: the three steps share it
    old = peer.client("secretsmanager", assume(peer, None, arn))
    time.sleep(0.15)
    peer.client("iam").put_role_policy(
        RoleName=name,
        PolicyName=REVOKE_POLICY_NAME,
        PolicyDocument=json.dumps(revoke_policy(datetime.now(UTC))),
    )
    time.sleep(0.15)
    new = peer.client("secretsmanager", assume(peer, None, arn))
    assert code(lambda: old.get_secret_value(SecretId=name)) == "AccessDeniedException"
    new.get_secret_value(SecretId=name)


def test_a_database_of_the_previous_schema_gets_mfa_time_steps(tmp_path: Path) -> None:
    """Data directories written before time steps were kept (a `last_code` column) still work."""
    path = tmp_path / "xtok.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE mfa_devices (serial TEXT PRIMARY KEY, name TEXT NOT NULL, seed BLOB "
            "NOT NULL, user_name TEXT, enabled REAL, last_code TEXT, created REAL NOT NULL)"
        )
        old.execute("INSERT INTO mfa_devices VALUES ('s', 'n', x'00', 'u', 1, '123456', 1)")
    db = Database(path)
    with db.write() as conn:
        conn.execute("UPDATE mfa_devices SET last_step = 5 WHERE serial = 's'")
        conn.execute(
            "INSERT INTO mfa_devices (serial, name, seed, created) VALUES ('t', 'm', x'00', 2)"
        )
    row = db.one("SELECT last_step FROM mfa_devices WHERE serial = 's'")
    assert row is not None and row["last_step"] == 5


def test_a_trust_policy_keeps_its_principals_by_unique_id(peer: Peer, unique: str) -> None:
    """A user deleted and re-created under the same name is not the one the role trusts; an ARN
    that names nobody is refused when the trust policy is written."""
    iam = peer.client("iam")
    name = f"trusted-{unique}"
    keys = user(peer, name, allow("sts:AssumeRole"))
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    arn = role(peer, f"trusting-{unique}", user_arn)
    shown = iam.get_role(RoleName=f"trusting-{unique}")["Role"]["AssumeRolePolicyDocument"]
    assert shown["Statement"][0]["Principal"] == {"AWS": user_arn}
    assume(peer, keys, arn)
    iam.delete_access_key(UserName=name, AccessKeyId=keys["AccessKeyId"])
    iam.delete_user_policy(UserName=name, PolicyName="p")
    iam.delete_user(UserName=name)
    again = user(peer, name, allow("sts:AssumeRole"))
    assert code(lambda: assume(peer, again, arn)) == "AccessDenied"
    shown = iam.get_role(RoleName=f"trusting-{unique}")["Role"]["AssumeRolePolicyDocument"]
    assert shown["Statement"][0]["Principal"]["AWS"].startswith("AIDA")
    err = error(
        lambda: iam.create_role(
            RoleName=f"nobody-{unique}",
            AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/nobody-{unique}"),
        )
    )
    assert err.response["Error"]["Code"] == "MalformedPolicyDocument"


@pytest.mark.parametrize(
    "tags",
    [
        [{"Key": "team", "Value": "ops\x1b[2J"}],  # a control character
        [{"Key": "aws:team", "Value": "ops"}],  # the reserved prefix
        [{"Key": "team", "Value": "o" * 257}],  # longer than 256
        [{"Key": "team", "Value": "ops"}, {"Key": "TEAM", "Value": "admins"}],  # same key
    ],
)
def test_session_tags_are_checked_like_aws(
    peer: Peer, unique: str, tags: list[dict[str, str]]
) -> None:
    """Session tags become aws:PrincipalTag/*: STS refuses what breaks its tag rules (and
    keys that differ only in case) instead of storing them on the session."""
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": admin_arn(peer)},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    }
    arn = str(
        peer.client("iam").create_role(
            RoleName=f"tagged-{unique}", AssumeRolePolicyDocument=doc(statement)
        )["Role"]["Arn"]
    )
    assert code(lambda: assume(peer, None, arn, Tags=tags)) == "ValidationError"
    assume(peer, None, arn, Tags=[{"Key": "team", "Value": "ops"}])  # a valid tag is fine


def test_get_session_token_credentials_call_iam_only_with_mfa(peer: Peer, unique: str) -> None:
    """STS: GetSessionToken's credentials call no IAM operation unless MFA was given, whatever
    the user's policies allow (AWS answers InvalidClientTokenId)."""
    iam = peer.client("iam")
    name = f"gst-{unique}"
    keys = user(peer, name, allow("iam:*"), allow("sts:*"))
    sts = peer.client("sts", keys)
    plain = dict(sts.get_session_token(DurationSeconds=900)["Credentials"])
    assert code(lambda: peer.client("iam", plain).get_user()) == "InvalidClientTokenId"
    assert peer.client("sts", plain).get_caller_identity()["Arn"].endswith(f"user/{name}")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    serial, seed = device["SerialNumber"], base64.b32decode(device["Base32StringSeed"])
    now = time.time()
    iam.enable_mfa_device(
        UserName=name,
        SerialNumber=serial,
        AuthenticationCode1=code_at(seed, now - STEP),
        AuthenticationCode2=code_at(seed, now),
    )
    with_mfa = sts.get_session_token(
        DurationSeconds=900, SerialNumber=serial, TokenCode=code_at(seed, now + STEP)
    )["Credentials"]
    assert peer.client("iam", dict(with_mfa)).get_user()["User"]["UserName"] == name


def test_a_caller_cannot_be_changed() -> None:
    """The key-holder cache hands one Caller to every request of its key: no request may change
    what the next one sees."""
    import dataclasses

    from xtok.server.auth import Caller

    caller = Caller(arn="arn:aws:iam::1:user/a", principal_arn="x", account="1", kind="user")
    with pytest.raises(dataclasses.FrozenInstanceError):
        caller.mfa = time.time()  # type: ignore[misc]
