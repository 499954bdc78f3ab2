"""Systems Manager managed instances, Run Command outcomes on the clock, the instance timeline."""
import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import launch

LINUX_DOC = "demo-quiesce-linux"
LINUX_CONTENT = {
    "schemaVersion": "2.2",
    "description": "quiesce hooks (test copy)",
    "parameters": {
        "action": {"type": "String", "allowedValues": ["freeze", "thaw"]},
        "mounts": {"type": "String", "default": ""},
        "maxFreezeSeconds": {"type": "String", "default": "120"},
        "hookTimeoutSeconds": {"type": "String", "default": "30"},
    },
    "mainSteps": [{"action": "aws:runShellScript", "name": "quiesce",
                   "inputs": {"runCommand": ["echo {{ action }}"]}}],
}


@pytest.fixture
def ssm(emu):
    return emu.client("ssm")


def _doc(ssm, name=LINUX_DOC, content=None, doc_type="Command"):
    ssm.create_document(Name=name, Content=json.dumps(content or LINUX_CONTENT),
                        DocumentType=doc_type, DocumentFormat="JSON")


def _agent(emu, instance, **body):
    return emu.control("POST", f"/ssm/instances/{instance}", body)


def _offset(emu, seconds):
    emu.control("POST", "/config", {"clock_offset_seconds": seconds})


def _freeze(ssm, instance, action="freeze", **kw):
    params = {"action": [action], "mounts": ["/data"], "maxFreezeSeconds": ["120"], "hookTimeoutSeconds": ["30"]}
    return ssm.send_command(InstanceIds=[instance], DocumentName=LINUX_DOC, Parameters=params,
                            TimeoutSeconds=60, Comment=f"ami-lifecycle demo {action} img", **kw)["Command"]


def _invocation(ssm, command_id, instance):
    return ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)


def _unchecked(emu):
    """An SSM client that sends what it is given (boto3 validates on its own)."""
    return boto3.client("ssm", region_name="us-east-1", endpoint_url=emu.url, aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="secret",
                        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))


def _code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def _control_error(emu, method, path, body):
    with pytest.raises(urllib.error.HTTPError) as e:
        emu.control(method, path, body)
    return e.value.code, json.loads(e.value.read())


# --- DescribeInstanceInformation -------------------------------------------------------


def test_only_instances_marked_managed_are_listed_with_ping_platform_and_agent(ec2, emu, ssm):
    linux, windows, plain = launch(ec2), launch(ec2), launch(ec2)
    assert ssm.describe_instance_information()["InstanceInformationList"] == []  # default: not managed
    _agent(emu, linux)
    _agent(emu, windows, platform="Windows", ping="ConnectionLost", agent_version="3.2.0.0")
    infos = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [linux, windows, plain]}])["InstanceInformationList"]
    by_id = {i["InstanceId"]: i for i in infos}
    assert set(by_id) == {linux, windows}
    assert (by_id[linux]["PingStatus"], by_id[linux]["PlatformType"]) == ("Online", "Linux")
    assert by_id[linux]["ResourceType"] == "EC2Instance" and by_id[linux]["AgentVersion"]
    assert (by_id[windows]["PingStatus"], by_id[windows]["PlatformType"]) == ("ConnectionLost", "Windows")
    assert by_id[windows]["AgentVersion"] == "3.2.0.0" and by_id[windows]["IsLatestVersion"] is False
    # The deprecated filter list and the other keys.
    old = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": [windows]}])["InstanceInformationList"]
    assert [i["InstanceId"] for i in old] == [windows]
    online = ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Online"]}])
    assert [i["InstanceId"] for i in online["InstanceInformationList"]] == [linux]
    # Unmarked again: no longer listed; a terminated instance is not listed either.
    _agent(emu, windows, managed=False)
    ec2.terminate_instances(InstanceIds=[linux])
    assert ssm.describe_instance_information()["InstanceInformationList"] == []


def test_describe_instance_information_pages_and_checks_its_limits(ec2, emu, ssm):
    ids = [launch(ec2) for _ in range(7)]
    for i in ids:
        _agent(emu, i)
    first = ssm.describe_instance_information(MaxResults=5)
    assert len(first["InstanceInformationList"]) == 5 and first["NextToken"]
    rest = ssm.describe_instance_information(MaxResults=5, NextToken=first["NextToken"])
    assert "NextToken" not in rest
    seen = [i["InstanceId"] for i in first["InstanceInformationList"] + rest["InstanceInformationList"]]
    assert seen == sorted(ids)
    # MaxResults 5-50 (API model), a token not handed out, an unknown filter key.
    with pytest.raises(ClientError) as e:
        _unchecked(emu).describe_instance_information(MaxResults=4)
    assert _code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.describe_instance_information(NextToken="not-a-token")
    assert _code(e) == "InvalidNextToken"
    with pytest.raises(ClientError) as e:
        ssm.describe_instance_information(Filters=[{"Key": "Color", "Values": ["red"]}])
    assert _code(e) == "InvalidFilterKey"


def test_tag_filters_select_managed_instances_by_their_ec2_tags(ec2, emu, ssm):
    tagged = launch(ec2, TagSpecifications=[{"ResourceType": "instance",
                                             "Tags": [{"Key": "ami-lifecycle:method", "Value": "quiesce"}]}])
    other = launch(ec2)
    _agent(emu, tagged)
    _agent(emu, other)
    out = ssm.describe_instance_information(Filters=[{"Key": "tag:ami-lifecycle:method", "Values": ["quiesce"]}])
    assert [i["InstanceId"] for i in out["InstanceInformationList"]] == [tagged]
    with pytest.raises(ClientError) as e:
        ssm.describe_instance_information(Filters=[{"Key": "tag-key", "Values": ["ami-lifecycle:method"]},
                                                   {"Key": "PingStatus", "Values": ["Online"]}])
    assert _code(e) == "InvalidFilterKey"


# --- control API ---------------------------------------------------------------------


def test_the_agent_control_api_refuses_bad_bodies_and_unknown_instances(ec2, emu):
    instance = launch(ec2)
    assert emu.control("GET", f"/ssm/instances/{instance}")["managed"] is False
    status, body = _control_error(emu, "POST", f"/ssm/instances/{instance}", {"ping": "Asleep"})
    assert status == 400 and "Asleep" in body["error"] and "Online" in body["error"]
    status, body = _control_error(emu, "POST", f"/ssm/instances/{instance}", {"outcome": "maybe"})
    assert status == 400 and "maybe" in body["error"]
    status, body = _control_error(emu, "POST", f"/ssm/instances/{instance}", {"freeze": {"color": 1}})
    assert status == 400 and "freeze" in body["error"]
    status, body = _control_error(emu, "POST", f"/ssm/instances/{instance}", {"delay_seconds": -1})
    assert status == 400 and "delay_seconds" in body["error"]
    assert emu.control("GET", f"/ssm/instances/{instance}")["managed"] is False, "a refused body changes nothing"
    status, body = _control_error(emu, "POST", "/ssm/instances/i-0123456789abcdef0", {"managed": True})
    assert status == 404 and "i-0123456789abcdef0" in body["error"]
    got = _agent(emu, instance, platform="Windows", vss=False, thaw={"outcome": "failure"})
    assert got["managed"] is True and got["platform"] == "Windows" and got["vss"] is False
    assert got["thaw"] == {"outcome": "failure"}


# --- SendCommand / GetCommandInvocation ----------------------------------------------


def test_a_command_is_in_progress_until_the_delay_has_passed_on_the_clock_then_succeeds(ec2, emu, ssm):
    _doc(ssm)
    instance = launch(ec2)
    _agent(emu, instance, delay_seconds=5)
    command = _freeze(ssm, instance)
    assert command["Status"] == "Pending" and command["DocumentName"] == LINUX_DOC
    running = _invocation(ssm, command["CommandId"], instance)
    assert (running["Status"], running["ResponseCode"]) == ("InProgress", -1)
    assert running["StandardOutputContent"] == "" and "ExecutionEndDateTime" not in running
    _offset(emu, 6)
    done = _invocation(ssm, command["CommandId"], instance)
    assert (done["Status"], done["StatusDetails"], done["ResponseCode"]) == ("Success", "Success", 0)
    assert done["DocumentName"] == LINUX_DOC and done["Comment"] == "ami-lifecycle demo freeze img"
    assert done["ExecutionEndDateTime"] > done["ExecutionStartDateTime"]


def test_failure_and_per_action_outcomes(ec2, emu, ssm):
    _doc(ssm)
    instance = launch(ec2)
    _agent(emu, instance, freeze={"outcome": "failure", "stderr": "pre-freeze.d/10-mysql: exit 3",
                                  "response_code": 3})
    freeze = _freeze(ssm, instance)
    thaw = _freeze(ssm, instance, action="thaw")
    failed = _invocation(ssm, freeze["CommandId"], instance)
    assert (failed["Status"], failed["ResponseCode"]) == ("Failed", 3)
    assert failed["StandardErrorContent"] == "pre-freeze.d/10-mysql: exit 3"
    assert _invocation(ssm, thaw["CommandId"], instance)["Status"] == "Success", "thaw keeps the default"


def test_a_hanging_command_stays_in_progress_then_times_out_at_its_execution_timeout(ec2, emu, ssm):
    _doc(ssm)
    instance = launch(ec2)
    _agent(emu, instance, outcome="timeout")
    command = _freeze(ssm, instance)
    _offset(emu, 3599)
    assert _invocation(ssm, command["CommandId"], instance)["Status"] == "InProgress"
    _offset(emu, 3601)  # aws:runShellScript's default execution timeout: 3600 s
    out = _invocation(ssm, command["CommandId"], instance)
    assert (out["Status"], out["StatusDetails"]) == ("TimedOut", "ExecutionTimedOut")
    # With an executionTimeout parameter (AWS-RunShellScript declares one), that one.
    _offset(emu, 0)
    short = ssm.send_command(InstanceIds=[instance], DocumentName="AWS-RunShellScript",
                             Parameters={"commands": ["sleep 999"], "executionTimeout": ["40"]})["Command"]
    _offset(emu, 30)
    assert _invocation(ssm, short["CommandId"], instance)["Status"] == "InProgress"
    _offset(emu, 41)
    assert _invocation(ssm, short["CommandId"], instance)["Status"] == "TimedOut"


def test_invocations_that_do_not_exist(ec2, emu, ssm):
    _doc(ssm)
    instance, other = launch(ec2), launch(ec2)
    _agent(emu, instance, invocation_lag_seconds=2)
    _agent(emu, other)
    command = _freeze(ssm, instance)
    with pytest.raises(ClientError) as e:  # just sent: AWS may not know the invocation yet
        _invocation(ssm, command["CommandId"], instance)
    assert _code(e) == "InvocationDoesNotExist"
    _offset(emu, 3)
    assert _invocation(ssm, command["CommandId"], instance)["Status"] == "Success"
    with pytest.raises(ClientError) as e:  # the command was not sent to that instance
        _invocation(ssm, command["CommandId"], other)
    assert _code(e) == "InvocationDoesNotExist"
    with pytest.raises(ClientError) as e:
        _invocation(ssm, "11111111-2222-3333-4444-555555555555", instance)
    assert _code(e) == "InvocationDoesNotExist"


def test_send_command_refuses_unmanaged_offline_and_unknown_instances(ec2, emu, ssm):
    _doc(ssm)
    unmanaged, offline = launch(ec2), launch(ec2)
    _agent(emu, offline, ping="ConnectionLost")
    for instance in (unmanaged, offline, "i-0123456789abcdef0"):
        with pytest.raises(ClientError) as e:
            _freeze(ssm, instance)
        assert _code(e) == "InvalidInstanceId"
        assert instance in e.value.response["Error"]["Message"]
        assert emu.control("GET", f"/instances/{instance}/timeline")["timeline"] == [], "nothing recorded"
    assert ssm.list_commands()["Commands"] == []


def test_send_command_checks_the_document_and_its_parameters(ec2, emu, ssm):
    instance = launch(ec2)
    _agent(emu, instance)
    with pytest.raises(ClientError) as e:
        _freeze(ssm, instance)  # the document was never created
    assert _code(e) == "InvalidDocument" and LINUX_DOC in e.value.response["Error"]["Message"]
    _doc(ssm)
    with pytest.raises(ClientError) as e:
        ssm.send_command(InstanceIds=[instance], DocumentName=LINUX_DOC, Parameters={"action": ["melt"]})
    assert _code(e) == "InvalidParameters" and "melt" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        ssm.send_command(InstanceIds=[instance], DocumentName=LINUX_DOC,
                         Parameters={"action": ["freeze"], "mount": ["/data"]})
    assert _code(e) == "InvalidParameters" and "mount" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        ssm.send_command(InstanceIds=[instance], DocumentName=LINUX_DOC, Parameters={})
    assert _code(e) == "InvalidParameters" and "action" in e.value.response["Error"]["Message"]
    _doc(ssm, name="demo-automation", doc_type="Automation",
         content={"schemaVersion": "0.3", "mainSteps": [{"action": "aws:sleep", "name": "s",
                                                         "inputs": {"Duration": "PT1S"}}]})
    with pytest.raises(ClientError) as e:
        ssm.send_command(InstanceIds=[instance], DocumentName="demo-automation")
    assert _code(e) == "InvalidDocument"
    # TimeoutSeconds 30-2592000 (API model).
    with pytest.raises(ClientError) as e:
        _unchecked(emu).send_command(InstanceIds=[instance], DocumentName=LINUX_DOC, Parameters={"action": ["freeze"]},
                         TimeoutSeconds=29)
    assert _code(e) == "ValidationException"
    assert emu.control("GET", f"/instances/{instance}/timeline")["timeline"] == []
    # A document ARN names the document too.
    arn = f"arn:aws:ssm:us-east-1:123456789012:document/{LINUX_DOC}"
    ok = ssm.send_command(InstanceIds=[instance], DocumentName=arn, Parameters={"action": ["thaw"]})["Command"]
    assert _invocation(ssm, ok["CommandId"], instance)["Status"] == "Success"


def test_windows_uses_the_vss_document_which_fails_clearly_without_the_vss_components(ec2, emu, ssm):
    _doc(ssm)
    with_vss, without_vss, linux = launch(ec2), launch(ec2), launch(ec2)
    _agent(emu, with_vss, platform="Windows")
    _agent(emu, without_vss, platform="Windows", vss=False)
    _agent(emu, linux)
    ok = ssm.send_command(InstanceIds=[with_vss], DocumentName="AWSEC2-ManageVssIO",
                          Parameters={"Action": ["Freeze"]}, TimeoutSeconds=60)["Command"]
    assert _invocation(ssm, ok["CommandId"], with_vss)["Status"] == "Success"
    bad = ssm.send_command(InstanceIds=[without_vss], DocumentName="AWSEC2-ManageVssIO",
                           Parameters={"Action": ["Freeze"]}, TimeoutSeconds=60)["Command"]
    failed = _invocation(ssm, bad["CommandId"], without_vss)
    assert failed["Status"] == "Failed" and failed["ResponseCode"] == 1
    assert "AwsVssComponents" in failed["StandardErrorContent"]
    with pytest.raises(ClientError) as e:  # the VSS document runs on Windows only
        ssm.send_command(InstanceIds=[linux], DocumentName="AWSEC2-ManageVssIO", Parameters={"Action": ["Freeze"]})
    assert _code(e) == "UnsupportedPlatformType"
    with pytest.raises(ClientError) as e:  # and the shell-script document not on Windows
        _freeze(ssm, with_vss)
    assert _code(e) == "UnsupportedPlatformType"
    with pytest.raises(ClientError) as e:
        ssm.send_command(InstanceIds=[with_vss], DocumentName="AWSEC2-ManageVssIO", Parameters={"Action": ["Pause"]})
    assert _code(e) == "InvalidParameters"


# --- timeline ------------------------------------------------------------------------


def test_the_timeline_orders_freeze_create_image_thaw_and_shows_no_reboot(ec2, emu, ssm):
    _doc(ssm)
    instance = launch(ec2)
    _agent(emu, instance, delay_seconds=2)
    freeze = _freeze(ssm, instance)
    _offset(emu, 3)
    assert _invocation(ssm, freeze["CommandId"], instance)["Status"] == "Success"
    image = ec2.create_image(InstanceId=instance, Name="quiesced", NoReboot=True)["ImageId"]
    thaw = _freeze(ssm, instance, action="thaw")
    timeline = emu.control("GET", f"/instances/{instance}/timeline")["timeline"]
    assert [(e["kind"], e.get("action")) for e in timeline] == [
        ("command", "freeze"), ("create-image", None), ("command", "thaw")]
    assert timeline[0]["command_id"] == freeze["CommandId"] and timeline[0]["document"] == LINUX_DOC
    assert timeline[0]["parameters"]["mounts"] == ["/data"] and timeline[0]["status"] == "Success"
    assert timeline[1]["image_id"] == image and timeline[1]["no_reboot"] is True
    assert timeline[2]["command_id"] == thaw["CommandId"] and timeline[2]["status"] == "InProgress"
    assert timeline[0]["time"] < timeline[1]["time"] <= timeline[2]["time"], "on the emulator's clock"
    assert [e["seq"] for e in timeline] == sorted(e["seq"] for e in timeline)
    assert emu.control("GET", "/reboots") == {}


def test_the_timeline_records_reboots_and_refused_create_images(ec2, emu, ssm):
    instance = launch(ec2)
    image = ec2.create_image(InstanceId=instance, Name="rebooted")["ImageId"]
    with pytest.raises(ClientError):
        ec2.create_image(InstanceId=instance, Name="rebooted", NoReboot=True)  # duplicate name
    ec2.reboot_instances(InstanceIds=[instance])
    timeline = emu.control("GET", f"/instances/{instance}/timeline")["timeline"]
    assert [(e["kind"], e.get("cause"), e.get("error")) for e in timeline] == [
        ("create-image", None, None), ("reboot", "CreateImage", None),
        ("create-image", None, "InvalidAMIName.Duplicate"), ("reboot", "RebootInstances", None)]
    assert timeline[0]["image_id"] == image and timeline[0]["no_reboot"] is False
    assert timeline[1]["image_id"] == image


def test_reset_clears_agents_invocations_and_timelines(ec2, emu, ssm):
    _doc(ssm)
    instance = launch(ec2)
    _agent(emu, instance)
    command = _freeze(ssm, instance)
    assert emu.control("GET", f"/instances/{instance}/timeline")["timeline"]
    req = urllib.request.Request(emu.url + "/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    assert emu.control("GET", f"/instances/{instance}/timeline")["timeline"] == []
    assert emu.control("GET", f"/ssm/instances/{instance}")["managed"] is False
    with pytest.raises(ClientError) as e:
        _invocation(ssm, command["CommandId"], instance)
    assert _code(e) == "InvocationDoesNotExist"
    # And the emulator's own reset, for an agent set after the first one.
    instance = launch(ec2)
    _agent(emu, instance)
    emu.control("POST", "/reset")
    assert ssm.describe_instance_information()["InstanceInformationList"] == []


def test_a_vss_thaw_more_than_ten_seconds_after_the_freeze_fails(ec2, emu, ssm):
    instance = launch(ec2)
    _agent(emu, instance, platform="Windows", delay_seconds=1)

    def vss(action):
        command = ssm.send_command(InstanceIds=[instance], DocumentName="AWSEC2-ManageVssIO",
                                   Parameters={"Action": [action]}, TimeoutSeconds=30)["Command"]
        return command["CommandId"]

    freeze = vss("Freeze")
    _offset(emu, 5)
    assert _invocation(ssm, freeze, instance)["Status"] == "Success"
    in_time = vss("Thaw")  # 4 s after the freeze completed
    _offset(emu, 7)
    assert _invocation(ssm, in_time, instance)["Status"] == "Success"
    freeze = vss("Freeze")  # completes at 8 s
    _offset(emu, 19)
    late = vss("Thaw")  # 11 s after
    _offset(emu, 21)
    out = _invocation(ssm, late, instance)
    assert out["Status"] == "Failed" and "10 s" in out["StandardErrorContent"]


def test_list_commands_shows_each_command_status_from_its_invocations(ec2, emu, ssm):
    _doc(ssm)
    instance = launch(ec2)
    _agent(emu, instance, delay_seconds=5, thaw={"outcome": "failure"})
    freeze = _freeze(ssm, instance)["CommandId"]
    thaw = _freeze(ssm, instance, action="thaw")["CommandId"]
    statuses = {c["CommandId"]: c["Status"] for c in ssm.list_commands()["Commands"]}
    assert statuses == {freeze: "InProgress", thaw: "InProgress"}
    _offset(emu, 6)
    statuses = {c["CommandId"]: c["Status"] for c in ssm.list_commands()["Commands"]}
    assert statuses == {freeze: "Success", thaw: "Failed"}
