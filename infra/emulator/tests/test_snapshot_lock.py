"""EBS snapshot lock (snapshot_lock.py): lock, describe, unlock, and the refused deletions."""
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import launch, make_image


def _snapshots(ec2, image_id):
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"]]


def _code(err):
    return err.value.response["Error"]["Code"]


def test_a_locked_snapshot_is_described_and_cannot_be_deleted_until_unlocked(ec2, emu):
    vol = ec2.create_volume(Size=4, AvailabilityZone="us-east-1a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    out = ec2.lock_snapshot(SnapshotId=snap, LockMode="governance", LockDuration=7)
    assert out["LockState"] == "governance"
    expires = out["LockExpiresOn"]
    assert timedelta(days=6, hours=23) < expires - datetime.now(timezone.utc) <= timedelta(days=7)
    described = ec2.describe_locked_snapshots(SnapshotIds=[snap])["Snapshots"]
    assert [(s["SnapshotId"], s["LockState"], s["LockExpiresOn"]) for s in described] == [
        (snap, "governance", expires)]
    assert [s["SnapshotId"] for s in ec2.describe_locked_snapshots()["Snapshots"]] == [snap]
    with pytest.raises(ClientError) as err:
        ec2.delete_snapshot(SnapshotId=snap)
    assert _code(err) == "SnapshotLocked"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ec2.unlock_snapshot(SnapshotId=snap)
    assert ec2.describe_locked_snapshots(SnapshotIds=[snap])["Snapshots"] == []
    ec2.delete_snapshot(SnapshotId=snap)


def test_compliance_mode_after_cool_off_can_only_be_extended(ec2, emu):
    vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    until = datetime.now(timezone.utc) + timedelta(days=30)
    out = ec2.lock_snapshot(SnapshotId=snap, LockMode="compliance", ExpirationDate=until, CoolOffPeriod=1)
    assert out["LockState"] == "compliance-cooloff"
    ec2.unlock_snapshot(SnapshotId=snap)  # within the cooling-off period
    ec2.lock_snapshot(SnapshotId=snap, LockMode="compliance", ExpirationDate=until)
    assert ec2.describe_locked_snapshots()["Snapshots"][0]["LockState"] == "compliance"
    with pytest.raises(ClientError) as err:
        ec2.unlock_snapshot(SnapshotId=snap)
    assert _code(err) == "InvalidParameterValue"
    with pytest.raises(ClientError):
        ec2.lock_snapshot(SnapshotId=snap, LockMode="compliance", LockDuration=1)  # shorter
    ec2.lock_snapshot(SnapshotId=snap, LockMode="compliance", LockDuration=60)  # longer: fine


@pytest.mark.parametrize("args", [
    {"LockMode": "governance"},
    {"LockMode": "governance", "LockDuration": 1,
     "ExpirationDate": datetime.now(timezone.utc) + timedelta(days=2)},
    {"LockMode": "governance", "LockDuration": 1, "CoolOffPeriod": 2},
])
def test_bad_lock_requests_are_refused(ec2, emu, args):
    vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    with pytest.raises(ClientError) as err:
        ec2.lock_snapshot(SnapshotId=snap, **args)
    assert _code(err) in ("InvalidParameterCombination", "MissingParameter")


def test_deregister_with_snapshots_keeps_a_locked_one(ec2, emu):
    iid = launch(ec2)
    vol = ec2.create_volume(Size=2, AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    image_id = ec2.create_image(InstanceId=iid, Name="locked-data", NoReboot=True)["ImageId"]
    from conftest import wait_state
    wait_state(ec2, image_id, "available", emu)
    root, data = _snapshots(ec2, image_id)
    ec2.lock_snapshot(SnapshotId=data, LockMode="governance", LockDuration=3)
    out = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    codes = {r["SnapshotId"]: r["ReturnCode"] for r in out["DeleteSnapshotResults"]}
    assert codes == {root: "success", data: "client-error"}
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert data in left and root not in left


def test_full_snapshot_size_is_reported_once_set(ec2, emu):
    vol = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    assert "FullSnapshotSizeInBytes" not in ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    out = emu.control("POST", f"/snapshots/{snap}/full-size", {"bytes": 2684354560})
    assert out == {"snapshot_id": snap, "full_snapshot_size_in_bytes": 2684354560}
    got = ec2.describe_snapshots(OwnerIds=["self"], MaxResults=5)["Snapshots"]
    assert [s["FullSnapshotSizeInBytes"] for s in got if s["SnapshotId"] == snap] == [2684354560]
