"""Fault layer: token buckets, latency, injected errors, crash switch, counters."""
import time

import pytest
from botocore.exceptions import ClientError

from conftest import launch, make_image


def _code(call, **kw):
    try:
        call(**kw)
        return None
    except ClientError as err:
        return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]


def test_token_bucket_throttles_copy_image_per_region(ec2, emu):
    source = make_image(ec2, emu, "bucket-src")
    emu.control("POST", "/config", {"buckets": True, "time_scale": 0.001})
    dest = emu.client("ec2", "eu-west-1")
    results = [_code(dest.copy_image, SourceImageId=source, SourceRegion="us-east-1", Name=f"copy-{i}")
               for i in range(101)]
    assert results[:100] == [None] * 100  # bucket size 100
    assert results[100] == ("RequestLimitExceeded", 503)
    # Buckets are per region: CopyImage into another region still has tokens.
    assert _code(emu.client("ec2", "eu-central-1").copy_image,
                 SourceImageId=source, SourceRegion="us-east-1", Name="other-region") is None
    c = emu.control("GET", "/counters")
    assert c["calls"]["eu-west-1"]["CopyImage"] == 101
    assert c["throttled"]["eu-west-1"]["CopyImage"] == 1


def test_time_scale_speeds_up_refill(ec2, emu):
    # CreateImage uses the shared mutating bucket: 50 tokens, 5/s refill.
    emu.control("POST", "/config", {"buckets": True, "time_scale": 100.0})
    iid = launch(ec2)
    for i in range(50):
        ec2.create_image(InstanceId=iid, Name=f"fill-{i}", NoReboot=True)
    time.sleep(0.05)  # 5/s * 100 * 0.05 s = 25 tokens back
    assert _code(ec2.create_image, InstanceId=iid, Name="after-refill", NoReboot=True) is None
    emu.control("POST", "/config", {"time_scale": 0.0001})  # also refills the buckets
    codes = [_code(ec2.create_image, InstanceId=iid, Name=f"drain-{i}", NoReboot=True) for i in range(51)]
    assert codes[-1] == ("RequestLimitExceeded", 503)


def test_latency(ec2, emu):
    emu.control("POST", "/config", {"latency_ms": 300})
    t0 = time.time()
    ec2.describe_images(Owners=["self"])
    assert time.time() - t0 >= 0.3
    # Only EC2 is slowed.
    t0 = time.time()
    emu.client("kms").list_keys()
    assert time.time() - t0 < 0.3


def test_injected_errors_reproducible_with_seed(ec2, emu):
    def run():
        emu.control("POST", "/config", {"seed": 42, "error_rates": {"DescribeImages": {"InternalError": 0.5}}})
        return [_code(ec2.describe_images, Owners=["self"]) for _ in range(20)]
    first, second = run(), run()
    assert first == second
    assert ("InternalError", 500) in first and None in first
    injected = emu.control("GET", "/counters")["injected"]["us-east-1"]["DescribeImages"]
    assert injected == 2 * first.count(("InternalError", 500))


@pytest.mark.parametrize("code,status", [("Unavailable", 503), ("RequestLimitExceeded", 503),
                                         ("ResourceLimitExceeded", 400), ("InternalError", 500)])
def test_injected_error_codes_and_xml(ec2, emu, code, status):
    emu.control("POST", "/config", {"error_rates": {"*": {code: 1.0}}})
    assert _code(ec2.describe_snapshots, OwnerIds=["self"]) == (code, status)
    # Other services are never affected.
    emu.client("sqs").list_queues()


def test_crash_before_does_not_apply(ec2, emu):
    iid = launch(ec2)
    emu.control("POST", "/config", {"crash": [{"action": "CreateImage", "nth": 2, "when": "before"}]})
    ec2.create_image(InstanceId=iid, Name="first", NoReboot=True)
    assert _code(ec2.create_image, InstanceId=iid, Name="second", NoReboot=True) == ("InternalError", 500)
    names = {i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert names == {"first"}
    ec2.create_image(InstanceId=iid, Name="third", NoReboot=True)  # only the Nth call crashes


def test_crash_after_applies_then_fails(ec2, emu):
    source = make_image(ec2, emu, "crash-src")
    emu.control("POST", "/config", {"crash": [{"action": "CopyImage", "nth": 1, "when": "after"}]})
    dest = emu.client("ec2", "eu-west-1")
    assert _code(dest.copy_image, SourceImageId=source, SourceRegion="us-east-1",
                 Name="crashed-copy", ClientToken="t1") == ("InternalError", 500)
    assert [i["Name"] for i in dest.describe_images(Owners=["self"])["Images"]] == ["crashed-copy"]
    # The retry with the same token finds the copy that was made.
    again = dest.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="crashed-copy", ClientToken="t1")
    assert dest.describe_images(Owners=["self"])["Images"][0]["ImageId"] == again["ImageId"]


def test_counters_count_and_reset(ec2, emu):
    ec2.describe_images(Owners=["self"])
    ec2.describe_images(Owners=["self"])
    emu.client("ec2", "us-west-2").describe_images(Owners=["self"])
    c = emu.control("GET", "/counters")
    assert c["calls"]["us-east-1"]["DescribeImages"] == 2
    assert c["calls"]["us-west-2"]["DescribeImages"] == 1
    assert c["throttled"] == {} and c["injected"] == {}
    emu.control("POST", "/counters/reset")
    assert emu.control("GET", "/counters") == {"calls": {}, "throttled": {}, "injected": {},
                                               "refused": {}, "async_failed": {}, "fast_xml": {}}


def test_bucket_is_asked_as_of_arrival_and_never_refills_backwards():
    # In-process: take_token with explicit arrival times (threads may reach the bucket out
    # of arrival order; the later arrival's refill must not be counted twice or undone).
    # (conftest puts the emulator's package on the path.)
    from ami_emulator import faults, state

    faults.reset_all()
    state.SETTINGS["time_scale"] = 1.0
    try:
        t0 = 1024.0  # times and rates exact in binary floating point
        assert all(faults.take_token("a", "r", "DeregisterImage", {}, t0) for _ in range(100))
        assert not faults.take_token("a", "r", "DeregisterImage", {}, t0)  # empty
        # 5/s: 1.25 tokens back after 0.25 s of arrivals (0.25 left after this take)...
        assert faults.take_token("a", "r", "DeregisterImage", {}, t0 + 0.25)
        # ...and an earlier arrival checked later finds no token made from "negative" time.
        assert not faults.take_token("a", "r", "DeregisterImage", {}, t0 + 0.125)
        assert not faults.take_token("a", "r", "DeregisterImage", {}, t0 + 0.375)  # 0.875
        assert faults.take_token("a", "r", "DeregisterImage", {}, t0 + 0.5)  # 1.5
    finally:
        faults.reset_all()
        state.reset()


def test_a_throttled_answer_takes_the_added_latency_too(ec2, emu):
    image_id = make_image(ec2, emu, "throttled-latency")
    emu.control("POST", "/config", {"buckets": True, "time_scale": 0.0001})
    for _ in range(100):
        ec2.describe_image_attribute(ImageId=image_id, Attribute="description")
    emu.control("POST", "/config", {"latency_ms": 200})
    t0 = time.time()
    assert _code(ec2.describe_image_attribute, ImageId=image_id,
                 Attribute="description") == ("RequestLimitExceeded", 503)
    assert time.time() - t0 >= 0.2
