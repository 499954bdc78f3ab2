"""EventBridge events for AMIs, delivered through moto's events backend to SQS."""
import json
import os

import pytest

from conftest import launch, make_image

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "fixtures", "events")


def _fixture(name):
    path = os.path.join(FIXTURES, name)
    with open(path) as f:
        return json.load(f)


def _shape(value):
    """Keys and value types, recursively (what must match the AWS samples)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture
def queue(emu):
    """A rule on the default bus for AMI state changes and image tag changes -> SQS."""
    sqs, events = emu.client("sqs"), emu.client("events")
    url = sqs.create_queue(QueueName="ami-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="ami-state", EventPattern=json.dumps(
        {"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"]}))
    events.put_targets(Rule="ami-state", Targets=[{"Id": "q", "Arn": arn}])
    events.put_rule(Name="ami-tags", EventPattern=json.dumps(
        {"source": ["aws.tag"], "detail-type": ["Tag Change on Resource"],
         "detail": {"service": ["ec2"], "resource-type": ["image"]}}))
    events.put_targets(Rule="ami-tags", Targets=[{"Id": "q", "Arn": arn}])

    def drain():
        out = []
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            out += [json.loads(m["Body"]) for m in msgs]
            for m in msgs:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return drain


def test_available_event_matches_fixture_shape(ec2, emu, queue):
    image_id = make_image(ec2, emu, "evented")
    got = [e for e in queue() if e["detail-type"] == "EC2 AMI State Change"]
    assert len(got) == 1
    ev = got[0]
    sample = _fixture("ami-state-change-available.json")
    assert _shape(ev) == _shape(sample)
    assert ev["resources"] == [f"arn:aws:ec2:us-east-1::image/{image_id}"]
    assert ev["detail"]["ImageId"] == image_id and ev["detail"]["State"] == "available"
    assert ev["account"] == "123456789012" and ev["region"] == "us-east-1"
    assert ev["time"].endswith("Z") and len(ev["time"]) == len(sample["time"])


def test_event_emitted_without_anyone_describing(ec2, emu, queue):
    import time

    ec2.create_image(InstanceId=launch(ec2), Name="quiet", NoReboot=True)
    time.sleep(0.5)  # the ticker thread publishes; nobody describes or ticks
    assert [e["detail"]["State"] for e in queue()] == ["available"]


def test_failed_deregistered_disabled_events(ec2, emu, queue):
    emu.control("POST", "/config", {"pending_seconds": 60})
    failing = ec2.create_image(InstanceId=launch(ec2), Name="will-fail", NoReboot=True)["ImageId"]
    emu.control("POST", f"/images/{failing}/fail")
    assert ec2.describe_images(ImageIds=[failing])["Images"][0]["State"] == "failed"
    emu.control("POST", "/config", {"pending_seconds": 0})
    good = make_image(ec2, emu, "good")
    ec2.disable_image(ImageId=good)
    ec2.enable_image(ImageId=good)
    ec2.deregister_image(ImageId=good)
    evs = queue()
    states = [(e["detail"]["ImageId"], e["detail"]["State"]) for e in evs]
    assert states == [(failing, "failed"), (good, "available"), (good, "disabled"),
                      (good, "available"), (good, "deregistered")]
    failed = evs[0]
    assert _shape(failed) == _shape(_fixture("ami-state-change-failed.json"))
    assert failed["detail"]["ErrorMessage"]


def test_tag_change_events(ec2, emu, queue):
    image_id = make_image(ec2, emu, "tagged", TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "Name", "Value": "web-backup"}]}])
    queue()  # drop the available event
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": "ami-lifecycle:share-with", "Value": "111122223333"}])
    ec2.delete_tags(Resources=[image_id], Tags=[{"Key": "Name"}])
    # Tags on non-image resources produce no image tag event.
    vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.create_tags(Resources=[vol], Tags=[{"Key": "x", "Value": "y"}])
    evs = queue()
    assert len(evs) == 2
    add, delete = evs
    assert _shape(add) == _shape(_fixture("tag-change-on-image.json"))
    assert add["resources"] == [f"arn:aws:ec2:us-east-1:123456789012:image/{image_id}"]
    assert add["detail"]["changed-tag-keys"] == ["ami-lifecycle:share-with"]
    assert add["detail"]["tags"] == {"Name": "web-backup", "ami-lifecycle:share-with": "111122223333"}
    assert delete["detail"]["changed-tag-keys"] == ["Name"]
    assert delete["detail"]["tags"] == {"ami-lifecycle:share-with": "111122223333"}
    assert (add["detail"]["version"], delete["detail"]["version"]) == (1, 2)
    assert add["source"] == "aws.tag" and add["detail"]["service"] == "ec2"
