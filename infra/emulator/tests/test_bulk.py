"""POST /_emulator/seed-images: bulk images with snapshots and templated tags (benchmarks)."""
import json
import time
import urllib.error
import urllib.request


def _tags(img):
    return {t["Key"]: t["Value"] for t in img.get("Tags", [])}


def _all_images(ec2):
    out, token = [], None
    while True:
        kw = {"Owners": ["self"], "MaxResults": 1000}
        if token:
            kw["NextToken"] = token
        page = ec2.describe_images(**kw)
        out += page["Images"]
        token = page.get("NextToken")
        if not token:
            return out


def test_seeds_tagged_images_with_their_own_snapshots(ec2, emu):
    # GIVEN 6 images in 2 lineages, 2 snapshots each, hourly slots
    resp = emu.control("POST", "/seed-images", {
        "region": "us-east-1", "count": 6, "lineages": 2, "snapshots_per_image": 2,
        "snapshot_size": 4, "slot_start": "2026-01-01T00:00:00Z", "slot_step_seconds": 3600,
        "tags": {"ami-lifecycle:managed-by": "ami-lifecycle",
                 "ami-lifecycle:source-instance": "i-{lineage:04d}",
                 "ami-lifecycle:slot": "{slot}"},
        "snapshot_tags": {"ami-lifecycle:managed-by": "ami-lifecycle"}})
    # THEN the answer and DescribeImages agree
    assert resp["count"] == 6 and resp["snapshots"] == 12 and len(resp["image_ids"]) == 6
    images = {i["ImageId"]: i for i in _all_images(ec2)}
    assert set(images) == set(resp["image_ids"])
    third = images[resp["image_ids"][3]]  # lineage 1, second in it
    assert third["State"] == "available"
    assert _tags(third) == {"ami-lifecycle:managed-by": "ami-lifecycle",
                            "ami-lifecycle:source-instance": "i-0001",
                            "ami-lifecycle:slot": "2026-01-01T01:00:00Z"}
    snaps = [b["Ebs"]["SnapshotId"] for b in third["BlockDeviceMappings"]]
    assert len(set(snaps)) == 2
    described = ec2.describe_snapshots(SnapshotIds=snaps)["Snapshots"]
    assert {s["VolumeSize"] for s in described} == {4}
    assert all(_tags(s) == {"ami-lifecycle:managed-by": "ami-lifecycle"} for s in described)


def test_seeded_images_deregister_with_their_snapshots(ec2, emu):
    ids = emu.control("POST", "/seed-images", {"count": 2})["image_ids"]
    img = ec2.describe_images(ImageIds=[ids[0]])["Images"][0]
    snaps = {b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"]}
    resp = ec2.deregister_image(ImageId=ids[0], DeleteAssociatedSnapshots=True)
    assert {r["SnapshotId"] for r in resp["DeleteSnapshotResults"]} == snaps
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not snaps & left and len(left) == 2


def test_pending_seed_becomes_available(ec2, emu):
    emu.control("POST", "/config", {"pending_seconds": 1.0})
    ids = emu.control("POST", "/seed-images", {"count": 1, "state": "pending",
                                               "region": "eu-west-1"})["image_ids"]
    west = emu.client("ec2", region="eu-west-1")
    assert west.describe_images(ImageIds=ids)["Images"][0]["State"] == "pending"
    deadline = time.monotonic() + 5
    while west.describe_images(ImageIds=ids)["Images"][0]["State"] != "available":
        assert time.monotonic() < deadline, "seeded pending image never became available"
        time.sleep(0.1)


def test_thousands_are_fast_and_ids_can_be_left_out(ec2, emu):
    started = time.monotonic()
    resp = emu.control("POST", "/seed-images", {"count": 5000, "lineages": 50,
                                                "return_ids": False})
    assert resp["count"] == 5000 and resp["snapshots"] == 10000 and "image_ids" not in resp
    assert time.monotonic() - started < 30
    assert len(_all_images(ec2)) == 5000


def test_bad_body_is_rejected_naming_the_field(emu):
    for body, word in (({"count": 0}, "count"), ({"state": "failed"}, "state"),
                       ({"colour": 1}, "colour"), ({"tags": {"k": "{nope}"}}, "{nope}")):
        req = urllib.request.Request(emu.url + "/_emulator/seed-images", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError(f"{body} was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400
            assert word in json.loads(e.read())["error"]
