"""fast_xml.py writes DescribeImages / DescribeSnapshots byte for byte as moto's serializer.

One inventory with every kind of image and snapshot the emulator makes (created with tags
that need escaping, extra and encrypted volumes, copied with a customer key, pending,
deprecated, disabled, shared, protected, launched from, bulk-seeded and sealed), read with
the compiled writer and with moto's (`fast_xml: false`): the answers must be equal but
for the request id, and the counters must show the compiled writer did write them.
"""
import re

from conftest import ACCOUNT_B, launch, make_image

REQUEST_ID = re.compile(rb"<requestId>[^<]*</requestId>")


def _raw(client, operation, **kw):
    bodies = []

    def keep(http_response, **_):
        bodies.append(http_response.content)

    event = f"after-call.ec2.{operation}"
    client.meta.events.register(event, keep)
    try:
        getattr(client, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())(**kw)
    finally:
        client.meta.events.unregister(event, keep)
    return REQUEST_ID.sub(b"<requestId/>", bodies[0])


def _both(emu, client, operation, **kw):
    emu.control("POST", "/config", {"fast_xml": False})
    slow = _raw(client, operation, **kw)
    emu.control("POST", "/config", {"fast_xml": True})
    before = emu.control("GET", "/counters")["fast_xml"].get("us-east-1", {}).get(operation, 0)
    fast = _raw(client, operation, **kw)
    after = emu.control("GET", "/counters")["fast_xml"].get("us-east-1", {}).get(operation, 0)
    return slow, fast, after - before


def _inventory(ec2, emu):
    kms = emu.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    odd = make_image(ec2, emu, "odd [tags] @x (y) 'z'", TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "a&b", "Value": "<x> \"q\" 'y' & z"},
                                           {"Key": "empty", "Value": ""}]},
        {"ResourceType": "snapshot", "Tags": [{"Key": "s", "Value": "1 < 2"}]}],
        Description="desc & <more>")
    iid = launch(ec2, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 3, "Encrypted": True, "KmsKeyId": key,
                                           "VolumeType": "io1", "Iops": 100}}])
    disks = ec2.create_image(InstanceId=iid, Name="two-disks", NoReboot=True)["ImageId"]
    emu.control("POST", "/config", {"pending_seconds": 60})
    pending = ec2.create_image(InstanceId=iid, Name="still-pending", NoReboot=True)["ImageId"]
    emu.control("POST", "/config", {"pending_seconds": 0})
    copy = ec2.copy_image(SourceImageId=odd, SourceRegion="us-east-1", Name="copy",
                          Encrypted=True, KmsKeyId=key, CopyImageTags=True)["ImageId"]
    deprecated = make_image(ec2, emu, "deprecated")
    ec2.enable_image_deprecation(ImageId=deprecated, DeprecateAt="2030-01-01T00:00:00Z")
    disabled = make_image(ec2, emu, "disabled")
    ec2.disable_image(ImageId=disabled)
    shared = make_image(ec2, emu, "shared")
    ec2.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]})
    protected = make_image(ec2, emu, "protected")
    ec2.enable_image_deregistration_protection(ImageId=protected, WithCooldown=True)
    launched = make_image(ec2, emu, "launched-from")
    launch(ec2, launched)
    emu.control("POST", "/seed-images", {
        "region": "us-east-1", "count": 30, "lineages": 3, "snapshots_per_image": 2,
        "tags": {"ami-lifecycle:managed-by": "ami-lifecycle", "ami-lifecycle:slot": "{slot}",
                 "ami-lifecycle:source-instance": "i-{lineage:017x}"},
        "snapshot_tags": {"ami-lifecycle:managed-by": "ami-lifecycle"}})
    return [odd, disks, pending, copy, deprecated, disabled, shared, protected, launched]


def test_the_compiled_writer_writes_what_moto_writes(ec2, emu):
    # GIVEN images and snapshots of every kind
    named = _inventory(ec2, emu)
    # WHEN each listing is read with both writers THEN the bytes are the same, and the
    # compiled writer wrote the second answer
    cases = [
        ("DescribeImages", {"Owners": ["self"], "IncludeDisabled": True, "IncludeDeprecated": True}),
        ("DescribeImages", {"Owners": ["self"], "MaxResults": 7}),
        ("DescribeImages", {"ImageIds": named}),
        ("DescribeImages", {"Filters": [{"Name": "tag:ami-lifecycle:managed-by",
                                         "Values": ["ami-lifecycle"]}], "MaxResults": 1000}),
        ("DescribeImages", {"Owners": ["self"], "Filters": [{"Name": "name", "Values": ["none"]}]}),
        ("DescribeSnapshots", {"OwnerIds": ["self"]}),
        ("DescribeSnapshots", {"OwnerIds": ["self"], "MaxResults": 5}),
    ]
    snapshots = [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]]
    cases.append(("DescribeSnapshots", {"SnapshotIds": snapshots[::3]}))
    for operation, kw in cases:
        slow, fast, written = _both(emu, ec2, operation, **kw)
        assert written == 1, (operation, kw)
        assert fast == slow, (operation, kw)
    # AND the inventory is not trivial: every kind is in the answer
    _, fast, _ = _both(emu, ec2, "DescribeImages", Owners=["self"], IncludeDisabled=True)
    for marker in (b"&lt;x&gt; \"q\" 'y' &amp; z", b"<kmsKeyId>", b"<deprecationTime>",
                   b"<imageState>disabled</imageState>", b"<imageState>pending</imageState>",
                   b"<sourceImageId>", b"<deregistrationProtection>", b"<lastLaunchedTime>",
                   b"<value/>"):
        assert marker in fast, marker


def test_off_writes_through_moto(ec2, emu):
    # GIVEN the compiled writer turned off WHEN images are listed THEN moto wrote the answer
    make_image(ec2, emu, "plain")
    emu.control("POST", "/config", {"fast_xml": False})
    emu.control("POST", "/counters/reset")
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 1
    assert emu.control("GET", "/counters")["fast_xml"] == {}
