"""SSM parameters of data type aws:ec2:image, labels, history and Parameter Store Change
events (ssm_parameters.py, ssm_events.py)."""
import json
import os

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_B, launch, make_image

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "fixtures", "events")
NAME = "/ami-lifecycle/ami-lifecycle/web-1/latest"


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture
def ssm(emu):
    return emu.client("ssm")


@pytest.fixture
def ssm_events(emu):
    """Parameter Store Change events of us-east-1's default bus, delivered to SQS."""
    sqs, events = emu.client("sqs"), emu.client("events")
    url = sqs.create_queue(QueueName="ssm-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="params", EventPattern=json.dumps(
        {"source": ["aws.ssm"], "detail-type": ["Parameter Store Change"]}))
    events.put_targets(Rule="params", Targets=[{"Id": "q", "Arn": arn}])

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


def _code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def _put(ssm, value, **kw):
    args = {"Name": NAME, "Value": value, "Type": "String", "DataType": "aws:ec2:image"}
    args.update(kw)
    return ssm.put_parameter(**args)


# ------------------------------------------------------------------ aws:ec2:image values

def test_available_own_image_is_stored(ec2, emu, ssm):
    image_id = make_image(ec2, emu)
    assert _put(ssm, image_id, Description="web-1")["Version"] == 1
    p = ssm.get_parameter(Name=NAME)["Parameter"]
    assert (p["Value"], p["DataType"], p["Type"], p["Version"]) == (image_id, "aws:ec2:image", "String", 1)


@pytest.mark.parametrize("value", ["ami-12345", "img-0123456789abcdef0", "ami-0123456789ABCDEF0",
                                   "ami-0123456789abcdef0"])
def test_invalid_value_answers_200_and_stores_nothing(ec2, emu, ssm, ssm_events, value):
    resp = _put(ssm, value)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200 and resp["Version"] == 1
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=NAME)
    assert _code(e) == "ParameterNotFound"
    assert ssm.describe_parameters()["Parameters"] == []
    assert emu.control("GET", "/counters")["async_failed"] == {"us-east-1": {"ssm:PutParameter": 1}}
    [ev] = ssm_events()
    assert ev["detail"] == {"exception": "Unable to Describe Resource", "dataType": "aws:ec2:image",
                            "name": NAME, "type": "String", "operation": "Create"}
    assert ev["source"] == "aws.ssm" and ev["detail-type"] == "Parameter Store Change"
    assert ev["resources"] == [f"arn:aws:ssm:us-east-1:123456789012:parameter{NAME}"]
    # the name stays free: a valid value creates version 1
    image_id = make_image(ec2, emu)
    assert _put(ssm, image_id)["Version"] == 1
    assert ssm.get_parameter(Name=NAME)["Parameter"]["Value"] == image_id


def test_invalid_update_keeps_the_current_version(ec2, emu, ssm, ssm_events):
    first = make_image(ec2, emu, "first")
    _put(ssm, first)
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=NAME,
                             Tags=[{"Key": "k", "Value": "v"}])
    assert _put(ssm, "ami-0000000000000000f", Overwrite=True)["Version"] == 2  # answered...
    p = ssm.get_parameter(Name=NAME)["Parameter"]
    assert (p["Value"], p["Version"]) == (first, 1)  # ...but not stored
    assert len(ssm.get_parameter_history(Name=NAME)["Parameters"]) == 1
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=NAME)["TagList"] == \
        [{"Key": "k", "Value": "v"}]
    events = ssm_events()
    assert [e["detail"]["operation"] for e in events] == ["Create", "Update"]
    assert events[1]["detail"]["exception"] == "Unable to Describe Resource"
    second = make_image(ec2, emu, "second")
    assert _put(ssm, second, Overwrite=True)["Version"] == 2
    assert ssm.get_parameter(Name=NAME)["Parameter"]["Value"] == second


def test_invalid_create_leaves_no_tags_behind(ec2, emu, ssm):
    _put(ssm, "ami-0000000000000000f", Tags=[{"Key": "ami-lifecycle:lineage", "Value": "web-1"}])
    with pytest.raises(ClientError):
        ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=NAME)
    _put(ssm, make_image(ec2, emu))
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=NAME)["TagList"] == []


def test_pending_image_other_region_and_unshared_image_are_not_stored(ec2, emu, ssm):
    emu.control("POST", "/config", {"pending_seconds": 3600})
    pending = ec2.create_image(InstanceId=launch(ec2), Name="pending", NoReboot=True)["ImageId"]
    emu.control("POST", "/config", {"pending_seconds": 0})
    west = emu.client("ec2", region="us-west-2")
    elsewhere = make_image(west, emu, "west")
    ec2_b = emu.client("ec2", account=ACCOUNT_B)
    unshared = make_image(ec2_b, emu, "b-private")
    for i, value in enumerate([pending, elsewhere, unshared]):
        name = f"/p/{i}"
        assert ssm.put_parameter(Name=name, Value=value, Type="String",
                                 DataType="aws:ec2:image")["Version"] == 1
        with pytest.raises(ClientError):
            ssm.get_parameter(Name=name)
    assert emu.control("GET", "/counters")["async_failed"]["us-east-1"]["ssm:PutParameter"] == 3
    # the same west image is valid for a parameter in us-west-2
    ssm_west = emu.client("ssm", region="us-west-2")
    ssm_west.put_parameter(Name=NAME, Value=elsewhere, Type="String", DataType="aws:ec2:image")
    assert ssm_west.get_parameter(Name=NAME)["Parameter"]["Value"] == elsewhere


def test_shared_and_public_images_are_valid(ec2, emu, ssm):
    ec2_b = emu.client("ec2", account=ACCOUNT_B)
    shared = make_image(ec2_b, emu, "b-shared")
    ec2_b.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": [{"UserId": "123456789012"}]})
    public = make_image(ec2_b, emu, "b-public")
    ec2_b.modify_image_attribute(ImageId=public, LaunchPermission={"Add": [{"Group": "all"}]})
    _put(ssm, shared)
    assert ssm.get_parameter(Name=NAME)["Parameter"]["Value"] == shared
    _put(ssm, public, Overwrite=True)
    assert ssm.get_parameter(Name=NAME)["Parameter"]["Value"] == public


def test_image_data_type_only_for_string(ec2, emu, ssm):
    image_id = make_image(ec2, emu)
    with pytest.raises(ClientError) as e:
        _put(ssm, image_id, Type="StringList")
    assert _code(e) == "ValidationException" and "String" in str(e.value)
    with pytest.raises(ClientError):
        ssm.get_parameter(Name=NAME)


def test_data_type_cannot_change_to_or_from_image(ec2, emu, ssm):
    image_id = make_image(ec2, emu)
    ssm.put_parameter(Name="/text", Value=image_id, Type="String")
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/text", Value=image_id, Type="String", DataType="aws:ec2:image",
                          Overwrite=True)
    assert _code(e) == "ValidationException" and "can't change" in str(e.value)
    assert ssm.get_parameter(Name="/text")["Parameter"]["DataType"] == "text"
    _put(ssm, image_id)
    for extra in ({"DataType": "text"}, {}):  # no DataType means text
        with pytest.raises(ClientError) as e:
            ssm.put_parameter(Name=NAME, Value=image_id, Type="String", Overwrite=True, **extra)
        assert _code(e) == "ValidationException"
    p = ssm.get_parameter(Name=NAME)["Parameter"]
    assert (p["DataType"], p["Version"]) == ("aws:ec2:image", 1)


def test_create_without_overwrite_is_refused_synchronously(ec2, emu, ssm):
    image_id = make_image(ec2, emu)
    _put(ssm, image_id)
    with pytest.raises(ClientError) as e:
        _put(ssm, "ami-00000000")  # exists: refused before any image check
    assert _code(e) == "ParameterAlreadyExists"
    assert emu.control("GET", "/counters")["async_failed"] == {}


# ------------------------------------------------------------------ labels and history

def _text_versions(ssm, name, n):
    for i in range(n):
        ssm.put_parameter(Name=name, Value=f"v{i + 1}", Type="String", Overwrite=i > 0)


def test_label_moves_between_versions(ssm):
    _text_versions(ssm, "/l", 3)
    ssm.label_parameter_version(Name="/l", ParameterVersion=1, Labels=["slot-20261201T0300Z"])
    assert ssm.get_parameter(Name="/l:slot-20261201T0300Z")["Parameter"]["Value"] == "v1"
    resp = ssm.label_parameter_version(Name="/l", ParameterVersion=3, Labels=["slot-20261201T0300Z"])
    assert (resp["InvalidLabels"], resp["ParameterVersion"]) == ([], 3)
    assert ssm.get_parameter(Name="/l:slot-20261201T0300Z")["Parameter"]["Value"] == "v3"
    labels = {p["Version"]: p["Labels"] for p in ssm.get_parameter_history(Name="/l")["Parameters"]}
    assert labels == {1: [], 2: [], 3: ["slot-20261201T0300Z"]}
    # no ParameterVersion: the latest version
    assert ssm.label_parameter_version(Name="/l", Labels=["latest"])["ParameterVersion"] == 3


def test_label_grammar(ssm):
    _text_versions(ssm, "/g", 1)
    bad = ["AWS-x", "aws.y", "Ssm-b", "SSM", "1slot", "a b", "slot/1"]
    resp = ssm.label_parameter_version(Name="/g", ParameterVersion=1,
                                       Labels=bad[:5] + ["ok.1-_x"])
    assert resp["InvalidLabels"] == bad[:5]
    resp = ssm.label_parameter_version(Name="/g", ParameterVersion=1, Labels=bad[5:])
    assert resp["InvalidLabels"] == bad[5:]
    [v] = ssm.get_parameter_history(Name="/g")["Parameters"]
    assert v["Labels"] == ["ok.1-_x"]
    with pytest.raises(ClientError) as e:  # over 100 characters: the model refuses
        ssm.label_parameter_version(Name="/g", ParameterVersion=1, Labels=["a" * 101])
    assert _code(e) == "ValidationException"


def test_at_most_ten_labels_per_version(ssm):
    _text_versions(ssm, "/ten", 1)
    ssm.label_parameter_version(Name="/ten", ParameterVersion=1, Labels=[f"l{i}" for i in range(10)])
    with pytest.raises(ClientError) as e:
        ssm.label_parameter_version(Name="/ten", ParameterVersion=1, Labels=["l10"])
    assert _code(e) == "ParameterVersionLabelLimitExceeded"
    [v] = ssm.get_parameter_history(Name="/ten")["Parameters"]
    assert len(v["Labels"]) == 10 and "l10" not in v["Labels"]


def test_label_unknown_parameter_or_version(ssm):
    with pytest.raises(ClientError) as e:
        ssm.label_parameter_version(Name="/nope", ParameterVersion=1, Labels=["x"])
    assert _code(e) == "ParameterNotFound"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/nope")  # moto left an empty entry here (answered 500)
    assert _code(e) == "ParameterNotFound"
    _text_versions(ssm, "/one", 1)
    with pytest.raises(ClientError) as e:
        ssm.label_parameter_version(Name="/one", ParameterVersion=5, Labels=["x"])
    assert _code(e) == "ParameterVersionNotFound"


def test_history_pages_of_at_most_50(ssm):
    _text_versions(ssm, "/h", 60)
    first = ssm.get_parameter_history(Name="/h", MaxResults=50)
    assert [p["Version"] for p in first["Parameters"]] == list(range(1, 51))
    second = ssm.get_parameter_history(Name="/h", MaxResults=50, NextToken=first["NextToken"])
    assert [p["Version"] for p in second["Parameters"]] == list(range(51, 61))
    assert "NextToken" not in second
    with pytest.raises(ClientError) as e:
        ssm.get_parameter_history(Name="/h", MaxResults=51)
    assert _code(e) == "ValidationException"


def test_hundred_versions_kept_unless_the_oldest_is_labelled(ssm):
    _text_versions(ssm, "/c", 100)
    ssm.label_parameter_version(Name="/c", ParameterVersion=1, Labels=["first"])
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/c", Value="v101", Type="String", Overwrite=True)
    assert _code(e) == "ParameterMaxVersionLimitExceeded"
    assert ssm.get_parameter(Name="/c")["Parameter"]["Version"] == 100
    ssm.label_parameter_version(Name="/c", ParameterVersion=2, Labels=["first"])  # move it away
    ssm.put_parameter(Name="/c", Value="v101", Type="String", Overwrite=True)
    versions = []
    token = None
    while True:
        page = ssm.get_parameter_history(Name="/c", **({"NextToken": token} if token else {}))
        versions += [p["Version"] for p in page["Parameters"]]
        token = page.get("NextToken")
        if not token:
            break
    assert versions == list(range(2, 102))
    assert ssm.get_parameter(Name="/c:first")["Parameter"]["Version"] == 2


# ------------------------------------------------------------------ Parameter Store Change

def test_change_events_for_create_update_label_delete(ec2, emu, ssm, ssm_events):
    first, second = make_image(ec2, emu, "first"), make_image(ec2, emu, "second")
    _put(ssm, first, Description="web-1 from us-east-1")
    _put(ssm, second, Overwrite=True, Description="web-1 from us-east-1 (2)")
    ssm.label_parameter_version(Name=NAME, ParameterVersion=2, Labels=["slot-20261201T0300Z"])
    ssm.put_parameter(Name="plain", Value="x", Type="String")
    ssm.delete_parameter(Name=NAME)
    ssm.delete_parameters(Names=["plain", "absent"])
    events = ssm_events()
    got = [(e["detail"]["operation"], e["detail"]["name"], e["detail"].get("description"))
           for e in events]
    assert got == [("Create", NAME, "web-1 from us-east-1"),
                   ("Update", NAME, "web-1 from us-east-1 (2)"),
                   ("LabelParameterVersion", NAME, "web-1 from us-east-1 (2)"),
                   ("Create", "plain", None),
                   ("Delete", NAME, "web-1 from us-east-1 (2)"),
                   ("Delete", "plain", None)]
    with open(os.path.join(FIXTURES, "parameter-store-change-update.json")) as f:
        sample = json.load(f)
    update = events[1]
    assert _shape(update) == _shape(sample)
    assert update["resources"] == [f"arn:aws:ssm:us-east-1:123456789012:parameter{NAME}"]
    assert events[3]["resources"] == ["arn:aws:ssm:us-east-1:123456789012:parameter/plain"]
    assert all(e["detail"]["type"] == "String" and e["account"] == "123456789012"
               and e["region"] == "us-east-1" for e in events)


def test_events_go_to_the_parameters_region(emu, ssm_events):
    sqs, events = emu.client("sqs", region="us-west-2"), emu.client("events", region="us-west-2")
    url = sqs.create_queue(QueueName="west-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="params", EventPattern=json.dumps({"source": ["aws.ssm"]}))
    events.put_targets(Rule="params", Targets=[{"Id": "q", "Arn": arn}])
    emu.client("ssm", region="us-west-2").put_parameter(Name="/w", Value="x", Type="String")
    [msg] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ev = json.loads(msg["Body"])
    assert (ev["region"], ev["detail"]["operation"], ev["detail"]["name"]) == ("us-west-2", "Create", "/w")
    assert ev["resources"] == ["arn:aws:ssm:us-west-2:123456789012:parameter/w"]
    assert ssm_events() == []  # nothing on us-east-1's bus
