"""Every request is checked against the botocore API model, in both protocols.

boto3 validates parameters itself, so these tests switch that off
(`parameter_validation=False`) or send raw HTTP, and look at what the emulator says.
"""
import json
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def raw_client(emu, service, region="us-east-1"):
    return boto3.client(service, region_name=region, endpoint_url=emu.url,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                        config=Config(parameter_validation=False,
                                      retries={"total_max_attempts": 1}))


def auth(service, region="us-east-1"):
    return (f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/{region}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0")


def post_query(emu, service, params):
    req = urllib.request.Request(emu.url + "/", data=urllib.parse.urlencode(params).encode(),
                                 method="POST", headers={
                                     "Content-Type": "application/x-www-form-urlencoded",
                                     "Authorization": auth(service)})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def post_json(emu, service, target, body):
    req = urllib.request.Request(emu.url + "/", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/x-amz-json-1.1",
                                          "X-Amz-Target": target, "Authorization": auth(service)})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}"), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


def ec2_error(call):
    with pytest.raises(ClientError) as err:
        call()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


# ---------------------------------------------------------------- EC2 (query protocol)

def test_ec2_required(emu):
    code, msg = ec2_error(lambda: raw_client(emu, "ec2").describe_image_references(
        IncludeAllResourceTypes=True))
    # a missing list is named as EC2 names it internally (ImageId.N -> imageIdSet)
    assert code == "MissingParameter" and msg == "The request must contain the parameter imageIdSet"
    code, msg = ec2_error(lambda: raw_client(emu, "ec2").create_image(Name="no-instance"))
    assert code == "MissingParameter" and msg == "The request must contain the parameter InstanceId"


def test_ec2_unknown_top_level_and_nested(emu):
    status, body, _ = post_query(emu, "ec2", {"Action": "DescribeImages", "Version": "2016-11-15",
                                              "Owner.1": "self", "Bogus": "1"})
    assert status == 400 and "<Code>UnknownParameter</Code>" in body and "Bogus" in body
    status, body, _ = post_query(emu, "ec2", {"Action": "DescribeImages", "Version": "2016-11-15",
                                              "Filter.1.Nme": "name", "Filter.1.Value.1": "x"})
    assert status == 400 and "UnknownParameter" in body and "Filter.1.Nme" in body
    # the same request spelled right is fine
    status, body, _ = post_query(emu, "ec2", {"Action": "DescribeImages", "Version": "2016-11-15",
                                              "Filter.1.Name": "name", "Filter.1.Value.1": "x"})
    assert status == 200, body


def test_ec2_list_max(emu):
    ids = [f"ami-{i:017x}" for i in range(11)]
    code, msg = ec2_error(lambda: raw_client(emu, "ec2").describe_image_references(
        ImageIds=ids, IncludeAllResourceTypes=True))
    assert code == "InvalidParameterValue" and "ImageId" in msg and "maximum is 10" in msg
    # refusals are counted per region and service:operation
    refused = emu.control("GET", "/counters")["refused"]
    assert refused == {"us-east-1": {"ec2:DescribeImageReferences": 1}}


def test_ec2_list_min_cannot_be_spelled_empty(emu):
    # EC2's protocol has no empty list: a list member sent as a plain value is malformed.
    status, body, _ = post_query(emu, "ec2", {
        "Action": "DescribeNetworkingFlexCostAllocationPolicies", "Version": "2016-11-15",
        "FcaPolicyId": ""})
    assert status == 400 and "UnknownParameter" in body and "FcaPolicyId" in body


def test_ec2_string_length_and_pattern(emu):
    code, msg = ec2_error(lambda: raw_client(emu, "ec2").copy_image(
        SourceImageId="ami-00000000000000001", SourceRegion="us-east-1", Name="ab"))
    assert code == "InvalidParameterValue" and "Name" in msg and "minimum length 3" in msg
    status, body, _ = post_query(emu, "ec2", {
        "Action": "AssociateCapacityReservationBillingOwner", "Version": "2016-11-15",
        "CapacityReservationId": "cr-1", "UnusedReservationBillingOwnerId": "12345678901x"})
    assert status == 400 and "InvalidParameterValue" in body and "[0-9]{12}" in body


def test_ec2_integer_range_and_type(emu):
    code, msg = ec2_error(lambda: raw_client(emu, "ec2").describe_image_references(
        ImageIds=["ami-00000000000000001"], IncludeAllResourceTypes=True, MaxResults=4))
    assert code == "InvalidParameterValue" and "MaxResults" in msg and "at least 5" in msg
    status, body, _ = post_query(emu, "ec2", {"Action": "DescribeImages", "Version": "2016-11-15",
                                              "MaxResults": "many"})
    assert status == 400 and "InvalidParameterValue" in body and "integer" in body


def test_ec2_enum_tag_specification_wording(emu):
    code, msg = ec2_error(lambda: raw_client(emu, "ec2").create_image(
        InstanceId="i-00000000000000001", Name="tagged",
        TagSpecifications=[{"ResourceType": "bogus", "Tags": [{"Key": "a", "Value": "b"}]}]))
    assert (code, msg) == ("InvalidParameterValue",
                           "'bogus' is not a valid taggable resource type for this operation.")


def test_ec2_enum(emu):
    code, msg = ec2_error(lambda: raw_client(emu, "ec2").describe_image_references(
        ImageIds=["ami-00000000000000001"], ResourceTypes=[{"ResourceType": "ec2:Bucket"}]))
    assert code == "InvalidParameterValue" and "ResourceType.1.ResourceType" in msg \
        and "ec2:LaunchTemplate" in msg


# ------------------------------------------------------------------ query protocol (STS)

def test_sts_query_protocol(emu):
    sts = raw_client(emu, "sts")
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/any", RoleSessionName="x")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "roleSessionName" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/any", RoleSessionName="ok",
                        DurationSeconds=60)
    assert "durationSeconds" in err.value.response["Error"]["Message"]
    # query protocol: an empty list is `ProvidedContexts=`; the model says 1..5 entries
    status, body, _ = post_query(emu, "sts", {
        "Action": "AssumeRole", "Version": "2011-06-15", "RoleSessionName": "ok",
        "RoleArn": "arn:aws:iam::111122223333:role/any", "ProvidedContexts": ""})
    assert status == 400 and "ValidationError" in body and "minimum is 1" in body
    # A valid request reaches moto (the role must exist and trust the caller: sts_trust.py).
    emu.client("iam", account="111122223333").create_role(
        RoleName="any", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole"}]}))
    assert sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/any",
                           RoleSessionName="fine")["Credentials"]["AccessKeyId"]


# ---------------------------------------------------------------------- JSON (KMS, SQS)

def kms_error(call):
    with pytest.raises(ClientError) as err:
        call()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_json_required(emu):
    code, msg = kms_error(lambda: raw_client(emu, "kms").create_alias(AliasName="alias/x"))
    assert code == "ValidationException"
    assert msg == ("1 validation error detected: Value null at 'targetKeyId' failed to satisfy "
                   "constraint: Member must not be null")


def test_json_unknown_member(emu):
    status, body, _ = post_json(emu, "kms", "TrentService.DescribeKey",
                                {"KeyId": "alias/x", "Bogus": 1})
    assert status == 400 and body["__type"] == "ValidationException" and "Bogus" in body["message"]


def test_json_list_max_and_min(emu):
    kms = raw_client(emu, "kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    code, msg = kms_error(lambda: kms.encrypt(KeyId=key, Plaintext=b"x",
                                              GrantTokens=[f"t{i}" for i in range(11)]))
    assert code == "ValidationException" and "grantTokens" in msg and "maximum is 10" in msg
    code, msg = kms_error(lambda: raw_client(emu, "events").put_events(Entries=[]))
    assert code == "ValidationException" and "entries" in msg and "minimum is 1" in msg


def test_json_string_length_and_pattern(emu):
    kms = raw_client(emu, "kms")
    code, msg = kms_error(lambda: kms.describe_key(KeyId=""))
    assert code == "ValidationException" and "keyId" in msg and "minimum length 1" in msg
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    code, msg = kms_error(lambda: kms.create_alias(AliasName="alias/bad name!", TargetKeyId=key))
    assert code == "ValidationException" and "aliasName" in msg and "pattern" in msg


def test_json_range_enum_and_type(emu):
    kms = raw_client(emu, "kms")
    code, msg = kms_error(lambda: kms.generate_random(NumberOfBytes=2000))
    assert code == "ValidationException" and "numberOfBytes" in msg and "at most 1024" in msg
    code, msg = kms_error(lambda: kms.create_key(KeyUsage="SIGN_EVERYTHING"))
    assert code == "ValidationException" and "keyUsage" in msg and "ENCRYPT_DECRYPT" in msg
    status, body, _ = post_json(emu, "kms", "TrentService.DescribeKey", {"KeyId": 5})
    assert status == 400 and body["__type"] == "SerializationException"


def test_sqs_json_has_query_compatible_code(emu):
    status, body, headers = post_json(emu, "sqs", "AmazonSQS.ReceiveMessage", {"Bogus": 1})
    assert status == 400 and body["__type"].endswith("ValidationException")
    assert headers.get("x-amzn-query-error") == "InvalidParameterValue;Sender"
    sqs = raw_client(emu, "sqs")
    with pytest.raises(ClientError) as err:
        sqs.receive_message()  # QueueUrl missing
    assert err.value.response["Error"]["Code"] == "MissingParameter"


def test_strict_switch_is_diagnosis_only(emu):
    ec2 = raw_client(emu, "ec2")
    assert emu.control("GET", "/config")["strict"] is True
    emu.control("POST", "/config", {"strict": False})
    ec2.describe_images(MaxResults=5, DryRun=False)  # fine either way
    status, _, _ = post_query(emu, "ec2", {"Action": "DescribeImages", "Version": "2016-11-15",
                                           "Bogus": "1"})
    assert status == 200
    emu.control("POST", "/reset")
    status, _, _ = post_query(emu, "ec2", {"Action": "DescribeImages", "Version": "2016-11-15",
                                           "Bogus": "1"})
    assert status == 400
