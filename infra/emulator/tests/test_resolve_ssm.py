"""`resolve:ssm:` image ids in launch templates and RunInstances (resolve_ssm.py)."""
import pytest
from botocore.exceptions import ClientError

from conftest import make_image

NAME = "/ami-lifecycle/ami-lifecycle/web-1/latest"
ALIAS = f"resolve:ssm:{NAME}"


@pytest.fixture
def ssm(emu):
    return emu.client("ssm")


@pytest.fixture
def images(ec2, emu, ssm):
    """Two images; the parameter's version 1 (label slot-1) holds the first, version 2 the
    second."""
    first, second = make_image(ec2, emu, "first"), make_image(ec2, emu, "second")
    ssm.put_parameter(Name=NAME, Value=first, Type="String", DataType="aws:ec2:image")
    ssm.label_parameter_version(Name=NAME, ParameterVersion=1, Labels=["slot-1"])
    ssm.put_parameter(Name=NAME, Value=second, Type="String", DataType="aws:ec2:image",
                      Overwrite=True)
    return first, second


def _code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def _template(ec2, image_id, name="web-lt"):
    return ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": image_id, "InstanceType": "t3.micro"})["LaunchTemplate"]


def _versions(ec2, **kw):
    return ec2.describe_launch_template_versions(LaunchTemplateName="web-lt", **kw)["LaunchTemplateVersions"]


def test_template_stores_the_alias_and_resolves_on_request(ec2, images):
    first, second = images
    _template(ec2, ALIAS)
    ec2.create_launch_template_version(LaunchTemplateName="web-lt",
                                       LaunchTemplateData={"ImageId": f"{ALIAS}:1"})
    ec2.create_launch_template_version(LaunchTemplateName="web-lt",
                                       LaunchTemplateData={"ImageId": f"{ALIAS}:slot-1"})
    stored = [v["LaunchTemplateData"]["ImageId"] for v in _versions(ec2)]
    assert stored == [ALIAS, f"{ALIAS}:1", f"{ALIAS}:slot-1"]
    resolved = [v["LaunchTemplateData"]["ImageId"] for v in _versions(ec2, ResolveAlias=True)]
    assert resolved == [second, first, first]
    # resolving never rewrote the template
    assert [v["LaunchTemplateData"]["ImageId"] for v in _versions(ec2)] == stored


def test_resolved_value_follows_the_parameter(ec2, emu, ssm, images):
    _template(ec2, ALIAS)
    third = make_image(ec2, emu, "third")
    ssm.put_parameter(Name=NAME, Value=third, Type="String", DataType="aws:ec2:image", Overwrite=True)
    [v] = _versions(ec2, ResolveAlias=True)
    assert v["LaunchTemplateData"]["ImageId"] == third


def test_create_version_answer_resolves_on_request(ec2, images):
    _template(ec2, images[0])
    v = ec2.create_launch_template_version(LaunchTemplateName="web-lt", ResolveAlias=True,
                                           LaunchTemplateData={"ImageId": ALIAS})["LaunchTemplateVersion"]
    assert v["LaunchTemplateData"]["ImageId"] == images[1]
    v = ec2.create_launch_template_version(LaunchTemplateName="web-lt",
                                           LaunchTemplateData={"ImageId": ALIAS})["LaunchTemplateVersion"]
    assert v["LaunchTemplateData"]["ImageId"] == ALIAS


@pytest.mark.parametrize("alias", ["resolve:ssm:/missing", f"{ALIAS}:7", f"{ALIAS}:no-such-label"])
def test_template_with_missing_parameter_is_refused(ec2, images, alias):
    with pytest.raises(ClientError) as e:
        _template(ec2, alias)
    assert _code(e) == "SsmInvalidParameter"
    assert "The following aliases are invalid" in str(e.value) and alias in str(e.value)
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    _template(ec2, images[0])
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(LaunchTemplateName="web-lt",
                                           LaunchTemplateData={"ImageId": alias})
    assert _code(e) == "SsmInvalidParameter"
    assert len(_versions(ec2)) == 1


def test_template_needs_an_image_data_type_parameter(ec2, emu, ssm):
    image_id = make_image(ec2, emu)
    ssm.put_parameter(Name="/plain", Value=image_id, Type="String")
    with pytest.raises(ClientError) as e:
        _template(ec2, "resolve:ssm:/plain")
    assert _code(e) == "SsmInvalidParameter" and "Unsupported data type" in str(e.value)


def _instance_image(ec2, reservation):
    iid = reservation["Instances"][0]["InstanceId"]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return inst["ImageId"]


def test_run_instances_with_alias(ec2, images):
    first, second = images
    for alias, want in ((ALIAS, second), (f"{ALIAS}:1", first), (f"{ALIAS}:slot-1", first)):
        r = ec2.run_instances(ImageId=alias, MinCount=1, MaxCount=1, InstanceType="t3.micro")
        assert r["Instances"][0]["ImageId"] == want
        assert _instance_image(ec2, r) == want


def test_run_instances_through_a_template_alias(ec2, emu, ssm, images):
    first, second = images
    _template(ec2, ALIAS)
    ec2.create_launch_template_version(LaunchTemplateName="web-lt",
                                       LaunchTemplateData={"ImageId": f"{ALIAS}:slot-1"})
    r = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web-lt"}, MinCount=1, MaxCount=1)
    assert _instance_image(ec2, r) == second  # default version 1: the parameter now
    r = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web-lt", "Version": "2"},
                          MinCount=1, MaxCount=1)
    assert _instance_image(ec2, r) == first
    # the default version follows the parameter
    third = make_image(ec2, emu, "third")
    ssm.put_parameter(Name=NAME, Value=third, Type="String", DataType="aws:ec2:image", Overwrite=True)
    r = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web-lt"}, MinCount=1, MaxCount=1)
    assert _instance_image(ec2, r) == third


def test_run_instances_with_missing_parameter_launches_nothing(ec2, images):
    before = len(ec2.describe_instances()["Reservations"])
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId="resolve:ssm:/missing", MinCount=1, MaxCount=1,
                          InstanceType="t3.micro")
    assert _code(e) == "SsmInvalidParameter" and "/missing" in str(e.value)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=f"{ALIAS}:9", MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert _code(e) == "SsmInvalidParameter"
    assert len(ec2.describe_instances()["Reservations"]) == before


def test_run_instances_text_parameter_must_hold_a_launchable_image(ec2, emu, ssm):
    image_id = make_image(ec2, emu)
    ssm.put_parameter(Name="/plain", Value=image_id, Type="String")
    r = ec2.run_instances(ImageId="resolve:ssm:/plain", MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert _instance_image(ec2, r) == image_id
    ssm.put_parameter(Name="/nothing", Value="ami-0123456789abcdef0", Type="String")
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId="resolve:ssm:/nothing", MinCount=1, MaxCount=1,
                          InstanceType="t3.micro")
    assert _code(e) == "InvalidAMIID.NotFound"


def test_disabled_resolved_image_is_refused(ec2, images):
    ec2.disable_image(ImageId=images[1])
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ALIAS, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert _code(e) == "IncorrectState"
