"""Billing product codes (control API) and the default EBS key (aws/ebs)."""
import urllib.error

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_B, make_image


def test_product_codes_visible_to_owner_and_shared_account(ec2, emu):
    image_id = make_image(ec2, emu, "billed")
    got = emu.control("POST", f"/images/{image_id}/product-codes",
                      {"product_codes": [{"ProductCodeId": "abc123", "ProductCodeType": "marketplace"}]})
    assert got["account"] == "123456789012" and got["region"] == "us-east-1"
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert img["ProductCodes"] == [{"ProductCodeId": "abc123", "ProductCodeType": "marketplace"}]
    # the product-code filter still matches
    assert [i["ImageId"] for i in ec2.describe_images(
        Filters=[{"Name": "product-code", "Values": ["abc123"]}])["Images"]] == [image_id]
    ec2.modify_image_attribute(ImageId=image_id,
                               LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]})
    other = emu.client("ec2", account=ACCOUNT_B)
    seen = other.describe_images(ImageIds=[image_id])["Images"][0]
    assert seen["ProductCodes"][0]["ProductCodeId"] == "abc123"
    # AWS refuses to copy a billed image shared by another account
    with pytest.raises(ClientError) as err:
        other.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="cp-billed")
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    assert image_id in err.value.response["Error"]["Message"]
    # the owner itself may copy it
    ec2.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="own-copy")


def test_product_codes_bad_body_and_unknown_image(ec2, emu):
    image_id = make_image(ec2, emu, "billed2")
    for body in ({}, {"product_codes": [{"ProductCodeType": "marketplace"}]},
                 {"product_codes": [{"ProductCodeId": "x", "ProductCodeType": "bogus"}]}):
        with pytest.raises(urllib.error.HTTPError) as err:
            emu.control("POST", f"/images/{image_id}/product-codes", body)
        assert err.value.code == 400
    assert "ProductCodes" not in ec2.describe_images(ImageIds=[image_id])["Images"][0] or \
        ec2.describe_images(ImageIds=[image_id])["Images"][0]["ProductCodes"] == []
    with pytest.raises(urllib.error.HTTPError) as err:
        emu.control("POST", "/images/ami-00000000000000000/product-codes",
                    {"product_codes": [{"ProductCodeId": "abc123"}]})
    assert err.value.code == 404


def test_encrypted_copy_without_key_uses_aws_managed_ebs_key(ec2, emu):
    source = make_image(ec2, emu, "plain-src")
    dest = emu.client("ec2", "eu-west-1")
    assert dest.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    kms = emu.client("kms", "eu-west-1")
    meta = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert meta["KeyManager"] == "AWS"
    image_id = dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="enc-default",
                               Encrypted=True)["ImageId"]
    img = dest.describe_images(ImageIds=[image_id])["Images"][0]
    snap_ids = [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"]]
    snaps = dest.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]
    assert snaps and all(s["Encrypted"] and s["KmsKeyId"] == meta["Arn"] for s in snaps)
    # the key's region/account are the copy's
    assert meta["Arn"].startswith("arn:aws:kms:eu-west-1:123456789012:key/")


def test_modified_default_key_is_used_and_reset_goes_back(ec2, emu):
    source = make_image(ec2, emu, "plain-src2")
    kms = emu.client("kms")
    key = kms.create_key()["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER"
    assert ec2.modify_ebs_default_kms_key_id(KmsKeyId=key["KeyId"])["KmsKeyId"] == key["Arn"]
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == key["Arn"]
    image_id = ec2.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="enc-custom",
                              Encrypted=True)["ImageId"]
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snap = ec2.describe_snapshots(SnapshotIds=[img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]])
    assert snap["Snapshots"][0]["KmsKeyId"] == key["Arn"]
    assert ec2.reset_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a", Encrypted=True)
    managed = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert vol["KmsKeyId"] == managed["Arn"] and managed["KeyManager"] == "AWS"
