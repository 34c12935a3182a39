"""Secrets Manager's API beyond get/put, against the real `xtok server` through boto3: staging
labels as AWS moves them, version listing, batch reads with per-secret authorization, random
passwords and tags. (moto is no oracle here: these are AWS's documented rules.)"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import CANARY, Peer, make_peer


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Peer:
    return make_peer(request, "xtok-server")


def stages(sm: Any, name: str) -> dict[str, list[str]]:
    return dict(sm.describe_secret(SecretId=name)["VersionIdsToStages"])


def test_put_with_custom_stages_leaves_current_and_previous_alone(peer: Peer, unique: str) -> None:
    sm = peer.client("secretsmanager")
    name = f"stage-{unique}"
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    assert stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    v3 = sm.put_secret_value(SecretId=name, SecretString="three", VersionStages=["AWSPENDING"])[
        "VersionId"
    ]
    # AWSPREVIOUS moves only when AWSCURRENT does.
    assert stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"], v3: ["AWSPENDING"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")["SecretString"] == "three"


def test_update_secret_version_stage_moves_current_and_previous(peer: Peer, unique: str) -> None:
    sm = peer.client("secretsmanager")
    name = f"rotate-{unique}"
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two", VersionStages=["AWSPENDING"])[
        "VersionId"
    ]
    with pytest.raises(ClientError) as info:  # the label sits on v1: it must be named
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2)
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2, RemoveFromVersionId=v1
    )
    assert stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSPENDING", "AWSCURRENT"]}
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=v2)
    assert stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    with pytest.raises(ClientError) as info:
        sm.update_secret_version_stage(
            SecretId=name, VersionStage="AWSCURRENT", RemoveFromVersionId=v2
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"


def test_list_secret_version_ids_and_deprecated_versions(peer: Peer, unique: str) -> None:
    sm = peer.client("secretsmanager")
    name = f"versions-{unique}"
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    v3 = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    listed = sm.list_secret_version_ids(SecretId=name)
    assert {v["VersionId"]: v["VersionStages"] for v in listed["Versions"]} == {
        v2: ["AWSPREVIOUS"],
        v3: ["AWSCURRENT"],
    }
    everything = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in everything} == {v1, v2, v3}


def test_same_client_request_token_is_idempotent_only_for_the_same_value(
    peer: Peer, unique: str
) -> None:
    sm = peer.client("secretsmanager")
    name = f"idem-{unique}"
    sm.create_secret(Name=name, SecretString="one")
    token = "0123456789abcdef0123456789abcdef"
    sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token)
    sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token)
    with pytest.raises(ClientError) as info:
        sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=token)
    assert info.value.response["Error"]["Code"] == "ResourceExistsException"


def test_list_secrets_entries_carry_versions_to_stages(peer: Peer, unique: str) -> None:
    sm = peer.client("secretsmanager")
    name = f"listed-{unique}"
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    found = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert [e["SecretVersionsToStages"] for e in found] == [{v1: ["AWSCURRENT"]}]


def test_batch_get_authorizes_each_secret(peer: Peer, unique: str) -> None:
    sm = peer.client("secretsmanager")
    mine, other = f"batch-{unique}/mine", f"batch-{unique}/other"
    sm.create_secret(Name=mine, SecretString=CANARY)
    sm.create_secret(Name=other, SecretString="other value")
    iam = peer.client("iam")
    user = f"batch-{unique}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.put_user_policy(
        UserName=user,
        PolicyName="read-mine",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:BatchGetSecretValue",
                        "Resource": "*",
                    },
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": f"arn:aws:secretsmanager:*:*:secret:{mine}-??????",
                    },
                ],
            }
        ),
    )
    got = peer.client("secretsmanager", key).batch_get_secret_value(
        SecretIdList=[mine, other, f"batch-{unique}/missing"]
    )
    assert [v["Name"] for v in got["SecretValues"]] == [mine]
    assert got["SecretValues"][0]["SecretString"] == CANARY
    assert {e["SecretId"]: e["ErrorCode"] for e in got["Errors"]} == {
        other: "AccessDeniedException",
        f"batch-{unique}/missing": "AccessDeniedException",  # denied callers learn nothing
    }
    # Filters need ListSecrets, which this user lacks.
    with pytest.raises(ClientError) as info:
        peer.client("secretsmanager", key).batch_get_secret_value(
            Filters=[{"Key": "name", "Values": [mine]}]
        )
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    admin = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": [f"batch-{unique}/"]}])
    assert sorted(v["Name"] for v in admin["SecretValues"]) == [mine, other]


def test_get_random_password_honours_its_options(peer: Peer) -> None:
    sm = peer.client("secretsmanager")
    default = sm.get_random_password()["RandomPassword"]
    assert len(default) == 32
    assert all(any(c in kind for c in default) for kind in (string.ascii_lowercase, string.digits))
    digits = sm.get_random_password(
        PasswordLength=50,
        ExcludeLowercase=True,
        ExcludeUppercase=True,
        ExcludePunctuation=True,
        ExcludeCharacters="0123",
    )["RandomPassword"]
    assert len(digits) == 50 and set(digits) <= set("456789")
    with pytest.raises(ClientError) as info:
        sm.get_random_password(PasswordLength=2, IncludeSpace=True)  # 5 types, 2 characters
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"


def test_tags_on_secrets(peer: Peer, unique: str) -> None:
    sm = peer.client("secretsmanager")
    name = f"tagged-{unique}"
    sm.create_secret(Name=name, SecretString="x", Tags=[{"Key": "team", "Value": "ci"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "env", "Value": "prod"}])
    described = sm.describe_secret(SecretId=name)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in described) == [("env", "prod"), ("team", "ci")]
    found = sm.list_secrets(Filters=[{"Key": "tag-key", "Values": ["env"]}])["SecretList"]
    assert name in [e["Name"] for e in found]
    sm.untag_resource(SecretId=name, TagKeys=["team"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "env", "Value": "prod"}]
    for bad in ({"Key": "aws:x", "Value": "v"}, {"Key": "k", "Value": "line\nbreak"}):
        with pytest.raises(ClientError) as info:
            sm.tag_resource(SecretId=name, Tags=[bad])
        assert info.value.response["Error"]["Code"] == "InvalidParameterException"
