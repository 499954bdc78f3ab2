"""Error messages in the forms EC2 writes them."""
import pytest
from botocore.exceptions import ClientError

from conftest import make_image


def error(call):
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_image_not_found_singular_and_plural(ec2, emu):
    make_image(ec2, emu, "exists")
    assert error(lambda: ec2.describe_images(ImageIds=["ami-0000000000000000a"])) == (
        "InvalidAMIID.NotFound", "The image id '[ami-0000000000000000a]' does not exist")
    assert error(lambda: ec2.describe_images(
        ImageIds=["ami-0000000000000000a", "ami-0000000000000000b"])) == (
        "InvalidAMIID.NotFound",
        "The image ids '[ami-0000000000000000a, ami-0000000000000000b]' do not exist")
    assert error(lambda: ec2.deregister_image(ImageId="ami-0000000000000000c")) == (
        "InvalidAMIID.NotFound", "The image id '[ami-0000000000000000c]' does not exist")
    assert error(lambda: emu.client("ec2", "eu-west-1").copy_image(
        SourceImageId="ami-0000000000000000d", SourceRegion="us-east-1", Name="copy-x")) == (
        "InvalidAMIID.NotFound", "The image id '[ami-0000000000000000d]' does not exist")


def test_malformed_image_id(ec2, emu):
    expected = ("InvalidAMIID.Malformed", 'Invalid id: "img-123" (expecting "ami-...")')
    assert error(lambda: ec2.describe_images(ImageIds=["img-123"])) == expected
    assert error(lambda: ec2.deregister_image(ImageId="img-123")) == expected
    assert error(lambda: emu.client("ec2", "eu-west-1").copy_image(
        SourceImageId="img-123", SourceRegion="us-east-1", Name="copy-y")) == expected
