"""Not-found answers of DescribeKeyPairs / DescribeSecurityGroups / DescribeVpcs name the
missing id as EC2 does (describe_errors.py)."""
import pytest
from botocore.exceptions import ClientError


@pytest.mark.parametrize("call, kwargs, code, message", [
    ("describe_key_pairs", {"KeyNames": ["ops", "missing-key"]}, "InvalidKeyPair.NotFound",
     "The key pair 'missing-key' does not exist"),
    ("describe_security_groups", {"GroupIds": ["sg-0123456789abcdef0"]}, "InvalidGroup.NotFound",
     "The security group 'sg-0123456789abcdef0' does not exist"),
    ("describe_vpcs", {"VpcIds": ["vpc-0123456789abcdef0"]}, "InvalidVpcID.NotFound",
     "The vpc ID 'vpc-0123456789abcdef0' does not exist"),
])
def test_not_found_names_the_missing_id(ec2, call, kwargs, code, message):
    ec2.create_key_pair(KeyName="ops")
    with pytest.raises(ClientError) as e:
        getattr(ec2, call)(**kwargs)
    assert (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]) == (code, message)


def test_known_ids_are_still_described(ec2):
    ec2.create_key_pair(KeyName="ops")
    assert [k["KeyName"] for k in ec2.describe_key_pairs(KeyNames=["ops"])["KeyPairs"]] == ["ops"]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]] == [vpc]
