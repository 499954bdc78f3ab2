"""Sharing: structured ModifySnapshotAttribute, org/OU launch permissions, second account."""
from conftest import ACCOUNT_B, make_image


def test_snapshot_create_volume_permission_structured_form(ec2, emu):
    vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                  CreateVolumePermission={"Add": [{"UserId": ACCOUNT_B}, {"Group": "all"}]})
    perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert sorted(map(str, perms["CreateVolumePermissions"])) == sorted(
        [str({"Group": "all"}), str({"UserId": ACCOUNT_B})])
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                  CreateVolumePermission={"Remove": [{"UserId": ACCOUNT_B}, {"Group": "all"}]})
    perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert perms["CreateVolumePermissions"] == []


def test_launch_permission_user_org_and_ou(ec2, emu):
    image_id = make_image(ec2, emu, "shared-org")
    org = "arn:aws:organizations::123456789012:organization/o-abc123"
    ou = "arn:aws:organizations::123456789012:ou/o-abc123/ou-ab12-cdef"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [
        {"UserId": ACCOUNT_B}, {"OrganizationArn": org}, {"OrganizationalUnitArn": ou}]})
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert {"UserId": ACCOUNT_B} in perms and {"OrganizationArn": org} in perms
    assert {"OrganizationalUnitArn": ou} in perms
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"OrganizationArn": org}]})
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert {"OrganizationArn": org} not in perms and len(perms) == 2


def test_second_account_sees_and_copies_image_shared_with_it(ec2, emu):
    image_id = make_image(ec2, emu, "shared-img")
    private_id = make_image(ec2, emu, "private-img")
    other = emu.client("ec2", account=ACCOUNT_B)
    assert other.describe_images(ExecutableUsers=["self"])["Images"] == []
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]})
    shared = other.describe_images(ExecutableUsers=["self"])["Images"]
    assert [(i["ImageId"], i["OwnerId"]) for i in shared] == [(image_id, "123456789012")]
    by_owner = other.describe_images(Owners=["123456789012"])["Images"]
    assert [i["ImageId"] for i in by_owner] == [image_id]  # not the private one
    assert private_id not in [i["ImageId"] for i in other.describe_images()["Images"]]
    assert other.describe_images(Owners=["self"])["Images"] == []
    # The grantee can copy it into its own account.
    dest = emu.client("ec2", "eu-west-1", account=ACCOUNT_B)
    copy_id = dest.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="adopted")["ImageId"]
    assert dest.describe_images(Owners=["self"])["Images"][0]["ImageId"] == copy_id
    assert dest.describe_images(ImageIds=[copy_id])["Images"][0]["OwnerId"] == ACCOUNT_B
