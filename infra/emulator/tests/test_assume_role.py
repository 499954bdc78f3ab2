"""STS AssumeRole across accounts: the trust policy decides (sts_trust.py)."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

HUB = "123456789012"
SPOKE = "111122223333"
OTHER = "444455556666"
DEPLOYMENT = "prod"
EXTERNAL_ID = "0123456789abcdef-external"
FN_PATH = f"/ami-lifecycle/{DEPLOYMENT}/"
SPOKE_ROLE = f"arn:aws:iam::{SPOKE}:role/ami-lifecycle/{DEPLOYMENT}-spoke"


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def spoke_trust(hub=HUB):
    """The contract's spoke trust: the hub root, the external id, the hub's function roles."""
    return doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{hub}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID},
                              "ArnLike": {"aws:PrincipalArn":
                                          f"arn:aws:iam::{hub}:role/ami-lifecycle/{DEPLOYMENT}/*"}}})


def make_role(emu, account, name, trust, path="/"):
    return emu.client("iam", account=account).create_role(
        RoleName=name, Path=path, AssumeRolePolicyDocument=trust)["Role"]["Arn"]


def session_client(emu, service, creds, region="us-east-1"):
    return boto3.client(service, region_name=region, endpoint_url=emu.url,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"],
                        config=Config(retries={"total_max_attempts": 1}))


def hub_function_session(emu, name="create-image", path=FN_PATH):
    """Credentials of a hub function role (a role of the hub trusting the hub account)."""
    arn = make_role(emu, HUB, name, doc({"Effect": "Allow", "Principal": {"AWS": HUB},
                                         "Action": "sts:AssumeRole"}), path)
    creds = emu.client("sts").assume_role(RoleArn=arn, RoleSessionName=name)["Credentials"]
    return arn, creds


def denied(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return e.value.response["Error"]["Message"]


def test_hub_function_role_assumes_spoke_and_acts_in_the_spoke_account(emu):
    make_role(emu, SPOKE, f"{DEPLOYMENT}-spoke", spoke_trust(), "/ami-lifecycle/")
    fn_arn, fn_creds = hub_function_session(emu)
    hub_sts = session_client(emu, "sts", fn_creds)
    assert hub_sts.get_caller_identity()["Account"] == HUB

    resp = hub_sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="run-1", ExternalId=EXTERNAL_ID)
    assert resp["AssumedRoleUser"]["Arn"] == \
        f"arn:aws:sts::{SPOKE}:assumed-role/{DEPLOYMENT}-spoke/run-1"
    creds = resp["Credentials"]
    assert session_client(emu, "sts", creds).get_caller_identity()["Account"] == SPOKE

    # EC2 calls with the spoke session land in the spoke account, not the hub.
    ec2 = session_client(emu, "ec2", creds)
    iid = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                            InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    image_id = ec2.create_image(InstanceId=iid, Name="spoke-image", NoReboot=True)["ImageId"]
    owned = emu.client("ec2", account=SPOKE).describe_images(Owners=["self"])["Images"]
    assert [(i["ImageId"], i["OwnerId"]) for i in owned] == [(image_id, SPOKE)]
    assert emu.client("ec2").describe_images(Owners=["self"])["Images"] == []


def test_wrong_or_missing_external_id_is_denied(emu):
    make_role(emu, SPOKE, f"{DEPLOYMENT}-spoke", spoke_trust(), "/ami-lifecycle/")
    _, fn_creds = hub_function_session(emu)
    sts = session_client(emu, "sts", fn_creds)
    message = denied(lambda: sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="sess",
                                             ExternalId="wrong-external-id"))
    assert message == (f"User: arn:aws:sts::{HUB}:assumed-role/create-image/create-image is not "
                       f"authorized to perform: sts:AssumeRole on resource: {SPOKE_ROLE}")
    denied(lambda: sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="sess"))


def test_principal_arn_outside_the_deployment_path_is_denied(emu):
    make_role(emu, SPOKE, f"{DEPLOYMENT}-spoke", spoke_trust(), "/ami-lifecycle/")
    # Same hub account, but a role outside /ami-lifecycle/prod/: ArnLike fails.
    _, creds = hub_function_session(emu, "intruder", "/other/")
    denied(lambda: session_client(emu, "sts", creds).assume_role(
        RoleArn=SPOKE_ROLE, RoleSessionName="sess", ExternalId=EXTERNAL_ID))
    # Another deployment's path does not match either.
    _, creds = hub_function_session(emu, "staging-fn", "/ami-lifecycle/staging/")
    denied(lambda: session_client(emu, "sts", creds).assume_role(
        RoleArn=SPOKE_ROLE, RoleSessionName="sess", ExternalId=EXTERNAL_ID))
    # The hub account's root credentials are not a function role: aws:PrincipalArn is root.
    message = denied(lambda: emu.client("sts").assume_role(
        RoleArn=SPOKE_ROLE, RoleSessionName="sess", ExternalId=EXTERNAL_ID))
    assert message.startswith(f"User: arn:aws:iam::{HUB}:root is not authorized")


def test_other_account_is_denied_even_with_the_right_path_and_external_id(emu):
    make_role(emu, SPOKE, f"{DEPLOYMENT}-spoke", spoke_trust(), "/ami-lifecycle/")
    arn = make_role(emu, OTHER, "create-image", doc(
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sts:AssumeRole"}), FN_PATH)
    creds = emu.client("sts", account=OTHER).assume_role(
        RoleArn=arn, RoleSessionName="xx")["Credentials"]
    denied(lambda: session_client(emu, "sts", creds).assume_role(
        RoleArn=SPOKE_ROLE, RoleSessionName="sess", ExternalId=EXTERNAL_ID))


def test_missing_role_is_access_denied_not_no_such_entity(emu):
    message = denied(lambda: emu.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{SPOKE}:role/ami-lifecycle/absent", RoleSessionName="sess"))
    assert message.endswith(f"on resource: arn:aws:iam::{SPOKE}:role/ami-lifecycle/absent")
    # The right name without its path is another ARN: no such role either.
    make_role(emu, SPOKE, f"{DEPLOYMENT}-spoke", spoke_trust(), "/ami-lifecycle/")
    _, fn_creds = hub_function_session(emu)
    denied(lambda: session_client(emu, "sts", fn_creds).assume_role(
        RoleArn=f"arn:aws:iam::{SPOKE}:role/{DEPLOYMENT}-spoke", RoleSessionName="sess",
        ExternalId=EXTERNAL_ID))


def test_role_arn_principal_and_explicit_deny(emu):
    fn_arn, fn_creds = hub_function_session(emu)
    target = make_role(emu, SPOKE, "direct", doc(
        {"Effect": "Allow", "Principal": {"AWS": [fn_arn]}, "Action": ["sts:AssumeRole",
                                                                       "sts:TagSession"]},
        {"Effect": "Deny", "Principal": "*", "Action": "sts:*",
         "Condition": {"StringLike": {"sts:RoleSessionName": "blocked-*"}}}))
    sts = session_client(emu, "sts", fn_creds)
    assert sts.assume_role(RoleArn=target, RoleSessionName="ok")["Credentials"]["AccessKeyId"]
    denied(lambda: sts.assume_role(RoleArn=target, RoleSessionName="blocked-1"))
    # The root of the hub is not that role.
    denied(lambda: emu.client("sts").assume_role(RoleArn=target, RoleSessionName="ok"))


def test_service_principal_and_principal_org_id(emu):
    info = emu.control("POST", "/organizations/seed", {"management": HUB,
                                                       "accounts": [{"id": SPOKE}]})
    lambda_only = make_role(emu, SPOKE, "lambda-only", doc(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
         "Action": "sts:AssumeRole"}))
    denied(lambda: emu.client("sts").assume_role(RoleArn=lambda_only, RoleSessionName="sess"))
    org_wide = make_role(emu, SPOKE, "org-wide", doc(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": info["organization_id"]}}}))
    assert emu.client("sts").assume_role(RoleArn=org_wide, RoleSessionName="sess")["Credentials"]
    denied(lambda: emu.client("sts", account=OTHER).assume_role(RoleArn=org_wide,
                                                                RoleSessionName="sess"))


def test_organization_access_role_trusts_the_management_account(emu):
    emu.control("POST", "/organizations/seed", {"management": HUB, "accounts": [{"id": SPOKE}]})
    role = f"arn:aws:iam::{SPOKE}:role/OrganizationAccountAccessRole"
    creds = emu.client("sts").assume_role(RoleArn=role, RoleSessionName="admin")["Credentials"]
    assert session_client(emu, "sts", creds).get_caller_identity()["Account"] == SPOKE
    denied(lambda: emu.client("sts", account=OTHER).assume_role(RoleArn=role,
                                                                RoleSessionName="admin"))


def test_an_assumed_role_session_spends_its_own_account_s_tokens(emu):
    """EC2's buckets are per account: a spoke session is not throttled because the hub has
    spent its bucket (the session's key is moto's, not a 12-digit account id)."""
    arn = make_role(emu, SPOKE, "reader", doc({"Effect": "Allow", "Principal": {"AWS": HUB},
                                               "Action": "sts:AssumeRole"}))
    creds = emu.client("sts").assume_role(RoleArn=arn, RoleSessionName="reader")["Credentials"]
    spoke = session_client(emu, "ec2", creds)
    hub = emu.client("ec2")
    # Sizes as on AWS, refill almost nil: the hub's describe bucket (100) runs dry.
    emu.control("POST", "/config", {"buckets": True, "time_scale": 0.0001})
    try:
        throttled = 0
        for _ in range(110):
            try:
                hub.describe_regions()
            except ClientError as e:
                assert e.response["Error"]["Code"] == "RequestLimitExceeded"
                throttled += 1
        assert throttled >= 10
        assert spoke.describe_regions()["Regions"]  # the spoke's own bucket is full
        assert spoke.describe_images(Owners=["self"])["Images"] == []
    finally:
        emu.control("POST", "/config", {"buckets": False, "time_scale": 1})
