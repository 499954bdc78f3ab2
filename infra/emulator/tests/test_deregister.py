"""DeregisterImage with snapshots, deregistration protection, DescribeImageReferences."""
import pytest
from botocore.exceptions import ClientError

from conftest import launch, make_image


def _snapshots(ec2, image_id):
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"]]


def test_delete_associated_snapshots_keeps_shared_ones(ec2, emu):
    iid = launch(ec2)
    az = "us-east-1a"
    vol = ec2.create_volume(Size=5, AvailabilityZone=az)["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    image_id = ec2.create_image(InstanceId=iid, Name="to-delete", NoReboot=True)["ImageId"]
    root_snap, data_snap = _snapshots(ec2, image_id)
    # A second image registered on the data snapshot keeps that snapshot in use.
    ec2.register_image(Name="sharer", RootDeviceName="/dev/sda1",
                       BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": data_snap}}])
    resp = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    codes = {r["SnapshotId"]: r["ReturnCode"] for r in resp["DeleteSnapshotResults"]}
    assert codes == {root_snap: "success", data_snap: "client-error"}
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert data_snap in left and root_snap not in left


def test_deregister_without_flag_keeps_snapshots(ec2, emu):
    iid = launch(ec2)
    vol = ec2.create_volume(Size=3, AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    image_id = ec2.create_image(InstanceId=iid, Name="keep-snaps", NoReboot=True)["ImageId"]
    snaps = _snapshots(ec2, image_id)
    assert len(snaps) == 2  # root + data volume
    resp = ec2.deregister_image(ImageId=image_id)
    assert "DeleteSnapshotResults" not in resp or resp["DeleteSnapshotResults"] == []
    assert len(ec2.describe_snapshots(SnapshotIds=snaps)["Snapshots"]) == len(snaps)


def test_deregistration_protection(ec2, emu):
    image_id = make_image(ec2, emu, "protected")
    ec2.enable_image_deregistration_protection(ImageId=image_id)
    with pytest.raises(ClientError) as err:
        ec2.deregister_image(ImageId=image_id)
    assert err.value.response["Error"]["Code"] == "OperationNotPermitted"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=image_id)


def test_protection_with_cooldown_blocks_for_24h(ec2, emu):
    image_id = make_image(ec2, emu, "cooldown")
    ec2.enable_image_deregistration_protection(ImageId=image_id, WithCooldown=True)
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    prot = ec2.describe_images(ImageIds=[image_id])["Images"][0]["DeregistrationProtection"]
    assert prot.startswith("disabled-until ")
    with pytest.raises(ClientError):
        ec2.deregister_image(ImageId=image_id)


def test_describe_image_references(ec2, emu):
    image_id = make_image(ec2, emu, "referenced")
    other = make_image(ec2, emu, "unreferenced")
    inst = launch(ec2, image_id)
    stopped = launch(ec2, image_id)
    ec2.stop_instances(InstanceIds=[stopped])
    gone = launch(ec2, image_id)
    ec2.terminate_instances(InstanceIds=[gone])
    lt = ec2.create_launch_template(LaunchTemplateName="lt-a",
                                    LaunchTemplateData={"ImageId": other})["LaunchTemplate"]["LaunchTemplateId"]
    # Only a non-default version references the image.
    ec2.create_launch_template_version(LaunchTemplateId=lt, LaunchTemplateData={"ImageId": image_id})
    refs = ec2.describe_image_references(ImageIds=[image_id], IncludeAllResourceTypes=True)["ImageReferences"]
    got = {(r["ResourceType"], r["Arn"]) for r in refs}
    # Default: instances in all states (terminated ones too, while EC2 still lists them).
    assert got == {
        ("ec2:Instance", f"arn:aws:ec2:us-east-1:123456789012:instance/{inst}"),
        ("ec2:Instance", f"arn:aws:ec2:us-east-1:123456789012:instance/{stopped}"),
        ("ec2:Instance", f"arn:aws:ec2:us-east-1:123456789012:instance/{gone}"),
        ("ec2:LaunchTemplate", f"arn:aws:ec2:us-east-1:123456789012:launch-template/{lt}"),
    }
    assert all(r["ImageId"] == image_id for r in refs)
    only_lt = ec2.describe_image_references(ImageIds=[image_id],
                                            ResourceTypes=[{"ResourceType": "ec2:LaunchTemplate"}])
    assert [r["ResourceType"] for r in only_lt["ImageReferences"]] == ["ec2:LaunchTemplate"]
