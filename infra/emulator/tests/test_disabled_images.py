"""DisableImage / EnableImage and what EC2 refuses for a disabled image (disabled_images.py)."""
import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_B, launch, make_image


def _image(ec2, image_id):
    return ec2.describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]


def test_disable_hides_unshares_and_enable_brings_back_without_the_shares(ec2, emu):
    image_id = make_image(ec2, emu, "to-disable")
    ec2.modify_image_attribute(ImageId=image_id,
                               LaunchPermission={"Add": [{"UserId": ACCOUNT_B}, {"Group": "all"}]})
    ec2.disable_image(ImageId=image_id)
    assert _image(ec2, image_id)["State"] == "disabled"
    own = [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert image_id not in own, "hidden from DescribeImages by default"
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert perms["LaunchPermissions"] == [], "made private"
    other = emu.client("ec2", account=ACCOUNT_B)
    assert other.describe_images(ExecutableUsers=["self"])["Images"] == []

    ec2.enable_image(ImageId=image_id)
    assert _image(ec2, image_id)["State"] == "available"
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert perms["LaunchPermissions"] == [], "the lost shares do not come back by themselves"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]})
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert perms["LaunchPermissions"] == [{"UserId": ACCOUNT_B}], "shareable again once enabled"


@pytest.mark.parametrize("change", [
    {"LaunchPermission": {"Add": [{"UserId": ACCOUNT_B}]}},
    {"LaunchPermission": {"Add": [{"Group": "all"}]}},
    {"OperationType": "add", "UserIds": [ACCOUNT_B], "Attribute": "launchPermission"},
])
def test_a_disabled_image_cannot_be_shared(ec2, emu, change):
    image_id = make_image(ec2, emu, "disabled-share")
    ec2.disable_image(ImageId=image_id)
    with pytest.raises(ClientError) as err:
        ec2.modify_image_attribute(ImageId=image_id, **change)
    assert err.value.response["Error"]["Code"] == "IncorrectState"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # removing (nothing left) is not refused
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": ACCOUNT_B}]})


def test_no_launch_from_a_disabled_image_until_enabled(ec2, emu):
    image_id = make_image(ec2, emu, "disabled-launch")
    ec2.disable_image(ImageId=image_id)
    with pytest.raises(ClientError) as err:
        launch(ec2, image_id)
    assert err.value.response["Error"]["Code"] == "IncorrectState"
    ec2.enable_image(ImageId=image_id)
    assert launch(ec2, image_id).startswith("i-")


def test_deprecation_can_be_cancelled_and_a_disabled_image_deregistered(ec2, emu):
    image_id = make_image(ec2, emu, "deprecated")
    ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt="2030-01-01T00:00:00Z")
    assert _image(ec2, image_id).get("DeprecationTime")
    ec2.disable_image(ImageId=image_id)
    ec2.disable_image_deprecation(ImageId=image_id)
    assert not _image(ec2, image_id).get("DeprecationTime")
    ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert ec2.describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"] == []
