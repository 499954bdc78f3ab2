"""DescribeImages/DescribeSnapshots paging, IncludeDisabled/IncludeDeprecated, extra fields."""
import datetime

from conftest import launch, make_image


def _all_pages(call, key, **kw):
    items, token, pages = [], None, 0
    while True:
        resp = call(**kw, **({"NextToken": token} if token else {}))
        items += resp[key]
        pages += 1
        token = resp.get("NextToken")
        if not token:
            return items, pages


def test_describe_images_pages_in_stable_order(ec2, emu):
    iid = launch(ec2)
    made = {ec2.create_image(InstanceId=iid, Name=f"page-{i}", NoReboot=True)["ImageId"] for i in range(7)}
    first = ec2.describe_images(Owners=["self"], MaxResults=3)
    assert len(first["Images"]) == 3 and first["NextToken"]
    items, pages = _all_pages(ec2.describe_images, "Images", Owners=["self"], MaxResults=3)
    ids = [i["ImageId"] for i in items]
    assert pages == 3 and len(ids) == 7 and set(ids) == made and ids == sorted(ids)


def test_describe_snapshots_pages(ec2, emu):
    az = "us-east-1a"
    vol = ec2.create_volume(Size=1, AvailabilityZone=az)["VolumeId"]
    made = {ec2.create_snapshot(VolumeId=vol)["SnapshotId"] for _ in range(12)}
    first = ec2.describe_snapshots(OwnerIds=["self"], MaxResults=5)
    assert len(first["Snapshots"]) == 5 and first["NextToken"]
    items, pages = _all_pages(ec2.describe_snapshots, "Snapshots", OwnerIds=["self"], MaxResults=5)
    assert pages == 3 and {s["SnapshotId"] for s in items} == made


def test_include_disabled(ec2, emu):
    image_id = make_image(ec2, emu, "to-disable")
    ec2.disable_image(ImageId=image_id)
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    imgs = ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    assert [(i["ImageId"], i["State"]) for i in imgs] == [(image_id, "disabled")]
    ec2.enable_image(ImageId=image_id)
    assert ec2.describe_images(Owners=["self"])["Images"][0]["State"] == "available"


def test_include_deprecated_for_images_of_other_accounts(emu):
    owner = emu.client("ec2")
    other = emu.client("ec2", account="111122223333")
    image_id = make_image(owner, emu, "old-image")
    owner.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    owner.enable_image_deprecation(ImageId=image_id, DeprecateAt=past)
    # The owner always sees its deprecated images; others only with IncludeDeprecated.
    assert owner.describe_images(Owners=["self"])["Images"][0]["DeprecationTime"].startswith("2020-01-01T00:00:00")
    assert other.describe_images(ExecutableUsers=["self"])["Images"] == []
    shown = other.describe_images(ExecutableUsers=["self"], IncludeDeprecated=True)["Images"]
    assert [i["ImageId"] for i in shown] == [image_id]
    owner.disable_image_deprecation(ImageId=image_id)
    assert "DeprecationTime" not in owner.describe_images(ImageIds=[image_id])["Images"][0]


def test_last_launched_and_protection_fields(ec2, emu):
    image_id = make_image(ec2, emu, "fields")
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert "LastLaunchedTime" not in img
    ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert img["LastLaunchedTime"].startswith(str(datetime.date.today().year))
    emu.control("POST", f"/images/{image_id}/last-launched", {"time": "2026-11-01T00:00:00Z"})
    ec2.enable_image_deregistration_protection(ImageId=image_id)
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert img["LastLaunchedTime"] == "2026-11-01T00:00:00Z"
    assert img["DeregistrationProtection"] == "enabled"
