"""Block public access for AMIs: the state the share function reads before sharing `all`."""
import pytest
from botocore.exceptions import ClientError


def test_state_is_per_region_unblocked_until_enabled_and_reset(ec2, emu):
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    out = ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    assert out["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    other = emu.client("ec2", region="eu-west-1")
    assert other.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    assert ec2.disable_image_block_public_access()["ImageBlockPublicAccessState"] == "unblocked"
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    emu.control("POST", "/reset")
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"


def test_seal_key_round_trips_generate_and_verify_mac(emu):
    """The deployment's HMAC key, made through the control API as the stack would, with
    moto's own GenerateMac/VerifyMac."""
    made = emu.control("POST", "/seal-key", {"region": "us-east-1", "alias": "alias/d-seal"})
    again = emu.control("POST", "/seal-key", {"region": "us-east-1", "alias": "alias/d-seal"})
    assert made["arn"] == again["arn"] and made["key_spec"] == "HMAC_256"
    kms = emu.client("kms")
    mac = kms.generate_mac(KeyId="alias/d-seal", MacAlgorithm="HMAC_SHA_256", Message=b"subject")["Mac"]
    ok = kms.verify_mac(KeyId=made["arn"], MacAlgorithm="HMAC_SHA_256", Message=b"subject", Mac=mac)
    assert ok["MacValid"] is True
    with pytest.raises(ClientError) as e:
        kms.verify_mac(KeyId=made["arn"], MacAlgorithm="HMAC_SHA_256", Message=b"other", Mac=mac)
    assert e.value.response["Error"]["Code"] == "KMSInvalidMacException"


def test_enable_accepts_only_block_new_sharing(ec2):
    with pytest.raises(ClientError) as e:
        ec2.enable_image_block_public_access(ImageBlockPublicAccessState="unblocked")
    assert e.value.response["Error"]["Code"] in ("InvalidParameterValue",)


def test_clock_offset_stamps_creation_dates_at_the_simulated_time(ec2, emu):
    """A simulation days ahead of the real clock: images are created after their slot."""
    from datetime import datetime, timedelta, timezone

    from conftest import launch

    instance = launch(ec2)
    emu.control("POST", "/config", {"clock_offset_seconds": 3 * 86400})
    image = ec2.create_image(InstanceId=instance, Name="later", NoReboot=True)["ImageId"]
    created = ec2.describe_images(ImageIds=[image])["Images"][0]["CreationDate"]
    when = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert when - datetime.now(timezone.utc) > timedelta(days=2, hours=23)
