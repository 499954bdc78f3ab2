"""tag_filters: DescribeImages / DescribeSnapshots bytes equal moto's own.

The emulator runs in this process (conftest's `server`, a thread on a free port) so each request can
be answered twice, once with the emulator's `tag:KEY` filter and once with moto's (put
back for the call), and the raw bodies compared; only the per-request requestId differs.
Mutations between requests (tags, deprecation, disabling, deregistration) must show in
both answers alike.
"""
from __future__ import annotations

import contextlib
import re

import boto3
import pytest
from botocore.config import Config

FLT = [{"Name": "tag:ami-lifecycle:managed-by", "Values": ["ami-lifecycle"]}]


@pytest.fixture
def ec2(server):
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(server + "/_emulator/reset", data=b"{}",
                                                  method="POST")).read()
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=server,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="s",
                        config=Config(retries={"total_max_attempts": 1}))


@contextlib.contextmanager
def moto_only():
    from moto.ec2.models.core import TaggedEC2Resource

    from ami_emulator import tag_filters
    TaggedEC2Resource.get_filter_value = tag_filters.original
    try:
        yield
    finally:
        TaggedEC2Resource.get_filter_value = tag_filters.get_filter_value


def raw(ec2, op: str, **kw) -> tuple[int, bytes]:
    """(status, body with the requestId blanked) of one call."""
    seen = {}

    def grab(http_response, **_):
        seen["status"], seen["body"] = http_response.status_code, http_response.content

    ec2.meta.events.register(f"after-call.ec2.{op}", grab)
    try:
        getattr(ec2, re.sub(r"(?<!^)([A-Z])", r"_\1", op).lower())(**kw)
    except ec2.exceptions.ClientError:
        pass
    finally:
        ec2.meta.events.unregister(f"after-call.ec2.{op}", grab)
    body = re.sub(rb"<(requestId|RequestID)>[^<]*</\1>", b"<\\1/>", seen["body"])
    return seen["status"], body


def diff(a: bytes, b: bytes) -> str:
    """The first differing stretch of two bodies, for the assertion message."""
    i = next((n for n, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"{a[max(0, i - 200):i + 120]!r}\n!=\n{b[max(0, i - 200):i + 120]!r}"


def same(ec2, op: str, **kw) -> bytes:
    fast = raw(ec2, op, **kw)
    with moto_only():
        slow = raw(ec2, op, **kw)
    assert fast == slow, diff(fast[1], slow[1])
    return fast[1]


def seed(server, count, **extra):
    import json
    import urllib.request
    body = {"region": "us-east-1", "count": count, "lineages": 3, "snapshots_per_image": 2,
            "return_ids": True,
            "tags": {"ami-lifecycle:managed-by": "ami-lifecycle", "n": "{n}", "esc": "a<&>\"'b"},
            "snapshot_tags": {"ami-lifecycle:managed-by": "ami-lifecycle"}, **extra}
    req = urllib.request.Request(server + "/_emulator/seed-images", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())["image_ids"]


def pages(ec2, op, key, **kw):
    bodies, token = [], None
    while True:
        args = dict(kw, **({"NextToken": token} if token else {}))
        bodies.append(same(ec2, op, **args))
        out = getattr(ec2, re.sub(r"(?<!^)([A-Z])", r"_\1", op).lower())(**args)
        token = out.get("NextToken")
        if not token:
            return bodies


def test_pages_and_filters_match_moto(server, ec2):
    ids = seed(server, 12)
    bodies = pages(ec2, "DescribeImages", "Images", Owners=["self"], Filters=FLT, MaxResults=5)
    assert len(bodies) == 3 and all(b"<imagesSet>" in b for b in bodies)
    assert b"a&lt;&amp;&gt;" in bodies[0]
    snaps = pages(ec2, "DescribeSnapshots", "Snapshots", OwnerIds=["self"], Filters=FLT,
                  MaxResults=10)
    assert len(snaps) == 3
    same(ec2, "DescribeImages", ImageIds=ids[:2])
    same(ec2, "DescribeImages", Owners=["self"], Filters=[{"Name": "tag:n", "Values": ["1"]}])
    # an empty answer and an error answer too
    empty = same(ec2, "DescribeImages", Owners=["self"], Filters=[{"Name": "tag:n", "Values": ["x"]}])
    assert b"<imagesSet/>" in empty
    assert same(ec2, "DescribeImages", Owners=["self"], MaxResults=5000).count(b"<Error>") == 1


def test_mutations_show_in_cached_pages(server, ec2):
    ids = seed(server, 4)
    first = same(ec2, "DescribeImages", Owners=["self"], IncludeDeprecated=True,
                 IncludeDisabled=True)
    snap = ec2.describe_images(ImageIds=[ids[0]])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    same(ec2, "DescribeSnapshots", OwnerIds=["self"])
    ec2.create_tags(Resources=[ids[0], snap], Tags=[{"Key": "extra", "Value": "1"}])
    ec2.delete_tags(Resources=[ids[1]], Tags=[{"Key": "n"}])
    ec2.enable_image_deprecation(ImageId=ids[2], DeprecateAt="2099-01-01T00:00:00Z")
    ec2.disable_image(ImageId=ids[3])
    ec2.modify_image_attribute(ImageId=ids[0], LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    after = same(ec2, "DescribeImages", Owners=["self"], IncludeDeprecated=True,
                 IncludeDisabled=True)
    assert after != first
    for text in (b"<key>extra</key>", b"2099-01-01T00:00:00", b"<imageState>disabled</imageState>"):
        assert text in after and text not in first
    snaps = same(ec2, "DescribeSnapshots", OwnerIds=["self"])
    assert b"<key>extra</key>" in snaps
    ec2.deregister_image(ImageId=ids[0])
    gone = same(ec2, "DescribeImages", Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True)
    assert ids[0].encode() not in gone and ids[1].encode() in gone


def test_api_created_image_with_encrypted_copy(server, ec2):
    # images stay pending throughout: the ticker must not change them between the
    # two answers compared
    import json
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(
        server + "/_emulator/config", data=json.dumps({"pending_seconds": 3600}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")).read()
    inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                             InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=inst, Name="made",
                             TagSpecifications=[{"ResourceType": "image",
                                                 "Tags": [{"Key": "k", "Value": "v"}]}])["ImageId"]
    same(ec2, "DescribeImages", ImageIds=[image])
    ec2.copy_image(SourceImageId=image, SourceRegion="us-east-1", Name="enc", Encrypted=True)
    body = same(ec2, "DescribeImages", Owners=["self"])
    assert body.count(b"<imageId>") == 2 and b"<imageState>pending</imageState>" in body
    snaps = same(ec2, "DescribeSnapshots", OwnerIds=["self"])
    assert b"<encrypted>true</encrypted>" in snaps


def test_tag_filters_match_moto(server, ec2):
    ids = seed(server, 9)
    ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "dup", "Value": "x*y"}])
    cases = [
        [{"Name": "tag:n", "Values": ["1"]}],
        [{"Name": "tag:n", "Values": ["0", "2"]}],
        [{"Name": "tag:n", "Values": ["*"]}],
        [{"Name": "tag:esc", "Values": ["a<*"]}],
        [{"Name": "tag:dup", "Values": ["x*y"]}],
        [{"Name": "tag:dup", "Values": ["x?y"]}],
        [{"Name": "tag:missing", "Values": ["*"]}],
        [{"Name": "tag:tag:n", "Values": ["1"]}],
        [{"Name": "tag-key", "Values": ["dup"]}],
        [{"Name": "tag-value", "Values": ["x*y"]}],
        FLT + [{"Name": "tag:n", "Values": ["2"]}],
    ]
    counts = []
    for flt in cases:
        body = same(ec2, "DescribeImages", Owners=["self"], Filters=flt)
        counts.append(body.count(b"<imageId>"))
        same(ec2, "DescribeSnapshots", OwnerIds=["self"], Filters=flt)
    assert counts == [3, 6, 9, 9, 1, 1, 0, 0, 1, 1, 3]
