"""CopyImage's time-based copies: SnapshotCopyCompletionDurationMinutes as EC2 takes it."""
import pytest
from botocore.exceptions import ClientError

from conftest import make_image


@pytest.fixture
def source(ec2, emu):
    return make_image(ec2, emu, "deadline-src")


def test_a_completion_duration_in_15_minute_steps_is_recorded_on_the_copys_snapshots(emu, source):
    dest = emu.client("ec2", "eu-west-1")
    image_id = dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="timed",
                               SnapshotCopyCompletionDurationMinutes=120)["ImageId"]
    img = dest.describe_images(ImageIds=[image_id])["Images"][0]
    snap_ids = [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"] if "Ebs" in b]
    assert snap_ids
    for snap in dest.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        assert snap["CompletionDurationMinutes"] == 120
    # Best effort (no duration): nothing recorded.
    plain = dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="plain")["ImageId"]
    img = dest.describe_images(ImageIds=[plain])["Images"][0]
    snap_ids = [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"] if "Ebs" in b]
    for snap in dest.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        assert "CompletionDurationMinutes" not in snap


@pytest.mark.parametrize("minutes", [15, 2880])
def test_the_bounds_are_accepted(emu, source, minutes):
    dest = emu.client("ec2", "eu-west-1")
    assert dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name=f"b{minutes}",
                           SnapshotCopyCompletionDurationMinutes=minutes)["ImageId"]


@pytest.mark.parametrize("minutes", [0, 10, 20, 2895, -15])
def test_other_durations_are_refused_and_nothing_is_copied(emu, source, minutes):
    dest = emu.client("ec2", "eu-west-1")
    with pytest.raises(ClientError) as e:
        dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name=f"bad{minutes}",
                        SnapshotCopyCompletionDurationMinutes=minutes)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "15-minute increments" in e.value.response["Error"]["Message"]
    assert dest.describe_images(Owners=["self"])["Images"] == []
