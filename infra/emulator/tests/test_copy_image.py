"""CopyImage in the destination region: idempotency, tags, encryption, source fields, cap."""
import pytest
from botocore.exceptions import ClientError

from conftest import make_image, wait_state


@pytest.fixture
def source(ec2, emu):
    image_id = make_image(ec2, emu, "source-img",
                          TagSpecifications=[{"ResourceType": "image",
                                              "Tags": [{"Key": "team", "Value": "web"}]}])
    return image_id


def test_client_token_is_idempotent(emu, source):
    dest = emu.client("ec2", "eu-west-1")
    a = dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="copy-c", ClientToken="tok-1")
    b = dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="copy-c", ClientToken="tok-1")
    assert a["ImageId"] == b["ImageId"]
    assert len(dest.describe_images(Owners=["self"])["Images"]) == 1


def test_copy_tags_tag_specs_and_source_fields(emu, source):
    # long enough that the ticker cannot make the copy available before we look
    emu.control("POST", "/config", {"pending_seconds": 1})
    dest = emu.client("ec2", "eu-west-1")
    image_id = dest.copy_image(
        SourceImageId=source, SourceRegion="us-east-1", Name="copy", CopyImageTags=True,
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "copied-by", "Value": "test"}]}],
    )["ImageId"]
    img = dest.describe_images(ImageIds=[image_id])["Images"][0]
    assert img["State"] == "pending"
    assert {t["Key"]: t["Value"] for t in img["Tags"]} == {"team": "web", "copied-by": "test"}
    assert img["SourceImageId"] == source and img["SourceImageRegion"] == "us-east-1"
    assert wait_state(dest, image_id, "available", emu)["State"] == "available"
    # Without CopyImageTags no user tags travel.
    plain = dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="plain")["ImageId"]
    assert "Tags" not in dest.describe_images(ImageIds=[plain])["Images"][0] or \
        not dest.describe_images(ImageIds=[plain])["Images"][0]["Tags"]


def test_encrypted_copy_records_kms_key_resolving_alias(emu, source):
    kms = emu.client("kms", "eu-west-1")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/ami-copies", TargetKeyId=key["KeyId"])
    dest = emu.client("ec2", "eu-west-1")
    image_id = dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="enc",
                               Encrypted=True, KmsKeyId="alias/ami-copies")["ImageId"]
    img = dest.describe_images(ImageIds=[image_id])["Images"][0]
    snap_ids = [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"]]
    for snap in dest.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        assert snap["Encrypted"] is True
        assert snap["KmsKeyId"] == key["Arn"]


def test_concurrent_copy_cap(emu, source):
    emu.control("POST", "/config", {"copy_cap": 1, "pending_seconds": 30})
    dest = emu.client("ec2", "eu-west-1")
    dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="copy-one")
    with pytest.raises(ClientError) as err:
        dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="copy-two")
    assert err.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The cap is per destination region.
    emu.client("ec2", "eu-central-1").copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="three")
