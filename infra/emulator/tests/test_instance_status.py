"""Status checks of a new or started instance: `initializing` for `launch_status_seconds`,
then `ok` (instance_status.py); stopped instances listed only with IncludeAllInstances;
StopInstances `stopping` for `stop_seconds`, then `stopped` (instance_stop.py)."""
import pytest
from botocore.exceptions import ClientError

from conftest import launch


def checks(ec2, instance, include_all=False):
    out = ec2.describe_instance_status(InstanceIds=[instance], IncludeAllInstances=include_all)
    return [(s["InstanceState"]["Name"], s["InstanceStatus"]["Status"], s["SystemStatus"]["Status"])
            for s in out["InstanceStatuses"]]


def test_a_new_instance_is_initializing_then_ok(ec2, emu):
    emu.control("POST", "/config", {"launch_status_seconds": 120})
    instance = launch(ec2)
    assert checks(ec2, instance) == [("running", "initializing", "initializing")]
    detail = ec2.describe_instance_status(InstanceIds=[instance])["InstanceStatuses"][0]
    assert detail["InstanceStatus"]["Details"] == [{"Name": "reachability", "Status": "initializing"}]
    # the emulator's clock moves past the checks: both pass
    emu.control("POST", "/config", {"clock_offset_seconds": 121})
    assert checks(ec2, instance) == [("running", "ok", "ok")]


def test_zero_seconds_is_ok_at_once_and_is_the_default(ec2, emu):
    assert emu.control("GET", "/config")["launch_status_seconds"] == 0.0
    assert checks(ec2, launch(ec2)) == [("running", "ok", "ok")]


def test_stopped_instances_are_listed_only_with_include_all_and_a_start_starts_over(ec2, emu):
    emu.control("POST", "/config", {"launch_status_seconds": 120})
    instance = launch(ec2)
    emu.control("POST", "/config", {"clock_offset_seconds": 121})
    assert checks(ec2, instance) == [("running", "ok", "ok")]
    stopping = ec2.stop_instances(InstanceIds=[instance])["StoppingInstances"][0]
    assert stopping["CurrentState"]["Name"] == "stopping"
    assert checks(ec2, instance) == []
    assert ec2.describe_instance_status()["InstanceStatuses"] == []
    assert checks(ec2, instance, include_all=True) == [("stopped", "not-applicable", "not-applicable")]
    ec2.start_instances(InstanceIds=[instance])
    assert checks(ec2, instance) == [("running", "initializing", "initializing")]
    # a start of a running instance does not restart its checks
    emu.control("POST", "/config", {"clock_offset_seconds": 242})
    ec2.start_instances(InstanceIds=[instance])
    assert checks(ec2, instance) == [("running", "ok", "ok")]


def test_an_impaired_instance_is_impaired_even_while_initializing(ec2, emu):
    emu.control("POST", "/config", {"launch_status_seconds": 120})
    instance = launch(ec2)
    emu.control("POST", f"/instances/{instance}/health", {"impaired": True})
    assert checks(ec2, instance)[0][1] == "impaired"


def state_of(ec2, instance):
    return ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]


def test_a_stop_is_stopping_for_stop_seconds_then_stopped(ec2, emu):
    assert emu.control("GET", "/config")["stop_seconds"] == 0.0
    emu.control("POST", "/config", {"stop_seconds": 60})
    instance = launch(ec2)
    answer = ec2.stop_instances(InstanceIds=[instance])["StoppingInstances"][0]
    assert (answer["PreviousState"]["Name"], answer["CurrentState"]["Name"]) == ("running", "stopping")
    assert state_of(ec2, instance) == {"Code": 64, "Name": "stopping"}
    by_state = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["stopping"]}])
    assert [i["InstanceId"] for r in by_state["Reservations"] for i in r["Instances"]] == [instance]
    assert checks(ec2, instance) == []
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[instance])
    assert e.value.response["Error"]["Code"] == "IncorrectInstanceState"
    assert e.value.response["Error"]["Message"] == \
        f"The instance '{instance}' is not in a state from which it can be started."
    emu.control("POST", "/config", {"clock_offset_seconds": 61})
    assert state_of(ec2, instance) == {"Code": 80, "Name": "stopped"}
    ec2.start_instances(InstanceIds=[instance])
    assert state_of(ec2, instance)["Name"] == "running"


def test_without_stop_seconds_a_stop_is_stopped_at_once(ec2):
    instance = launch(ec2)
    ec2.stop_instances(InstanceIds=[instance])
    assert state_of(ec2, instance) == {"Code": 80, "Name": "stopped"}


def test_a_stopping_instance_can_be_terminated(ec2, emu):
    emu.control("POST", "/config", {"stop_seconds": 60})
    instance = launch(ec2)
    ec2.stop_instances(InstanceIds=[instance])
    ec2.terminate_instances(InstanceIds=[instance])
    emu.control("POST", "/config", {"clock_offset_seconds": 61})
    assert state_of(ec2, instance)["Name"] == "terminated"
