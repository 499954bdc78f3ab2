"""Launch template versions: SourceVersion, ClientToken, descriptions, default version and
tag filters (launch_templates.py; the last two are moto's own, pinned here)."""
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import make_image

TRACK = {"Key": "ami-lifecycle:track", "Value": "web-1"}


def _code(excinfo):
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def template(ec2, emu):
    image_id = make_image(ec2, emu)
    lt = ec2.create_launch_template(
        LaunchTemplateName="web-lt",
        VersionDescription="first",
        LaunchTemplateData={
            "ImageId": image_id, "InstanceType": "t3.micro", "KeyName": "ops",
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda",
                                     "Ebs": {"SnapshotId": "snap-0123456789abcdef0",
                                             "VolumeSize": 20}}],
            "TagSpecifications": [{"ResourceType": "instance",
                                   "Tags": [{"Key": "role", "Value": "web"}]}]},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [TRACK]}])["LaunchTemplate"]
    return lt["LaunchTemplateId"], image_id


def _data(ec2, version):
    [v] = ec2.describe_launch_template_versions(LaunchTemplateName="web-lt",
                                                Versions=[str(version)])["LaunchTemplateVersions"]
    return v["LaunchTemplateData"]


def test_version_1_has_only_instance_tags_in_its_data(ec2, template):
    data = _data(ec2, 1)
    assert data["TagSpecifications"] == [{"ResourceType": "instance",
                                          "Tags": [{"Key": "role", "Value": "web"}]}]
    [lt] = ec2.describe_launch_templates(LaunchTemplateNames=["web-lt"])["LaunchTemplates"]
    assert lt["Tags"] == [TRACK]


def test_source_version_copies_and_overrides(ec2, emu, template):
    _, old = template
    new = make_image(ec2, emu, "new")
    v = ec2.create_launch_template_version(LaunchTemplateName="web-lt", SourceVersion="1",
                                           VersionDescription="ami-lifecycle: web-1 slot-1",
                                           LaunchTemplateData={"ImageId": new})["LaunchTemplateVersion"]
    assert v["VersionNumber"] == 2 and v["DefaultVersion"] is False
    data = _data(ec2, 2)
    assert data["ImageId"] == new
    assert (data["InstanceType"], data["KeyName"]) == ("t3.micro", "ops")
    assert data["TagSpecifications"] == _data(ec2, 1)["TagSpecifications"]
    # inherited mappings lose their snapshots (API reference); the rest is kept
    assert data["BlockDeviceMappings"] == [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20}}]
    assert _data(ec2, 1)["ImageId"] == old  # the source is untouched
    assert _data(ec2, 1)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == "snap-0123456789abcdef0"


def test_explicit_mappings_replace_the_inherited_ones(ec2, template):
    mapping = [{"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": "snap-0fedcba9876543210"}}]
    ec2.create_launch_template_version(LaunchTemplateName="web-lt", SourceVersion="$Latest",
                                       LaunchTemplateData={"BlockDeviceMappings": mapping})
    data = _data(ec2, 2)
    assert data["BlockDeviceMappings"] == mapping and data["KeyName"] == "ops"


def test_without_source_version_only_the_given_data(ec2, template):
    ec2.create_launch_template_version(LaunchTemplateName="web-lt",
                                       LaunchTemplateData={"InstanceType": "t3.large"})
    assert _data(ec2, 2) == {"InstanceType": "t3.large"}


def test_unknown_source_version(ec2, template):
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(LaunchTemplateName="web-lt", SourceVersion="9",
                                           LaunchTemplateData={"InstanceType": "t3.small"})
    assert _code(e) == "InvalidLaunchTemplateId.VersionNotFound"
    assert len(ec2.describe_launch_template_versions(LaunchTemplateName="web-lt")
               ["LaunchTemplateVersions"]) == 1


def test_client_token_makes_one_version(ec2, emu, template):
    template_id, _ = template
    new = make_image(ec2, emu, "new")
    args = dict(LaunchTemplateId=template_id, SourceVersion="1", ClientToken="web-1-slot-1",
                VersionDescription="slot-1", LaunchTemplateData={"ImageId": new})
    a = ec2.create_launch_template_version(**args)["LaunchTemplateVersion"]
    b = ec2.create_launch_template_version(**args)["LaunchTemplateVersion"]
    assert a["VersionNumber"] == b["VersionNumber"] == 2
    assert b["LaunchTemplateData"]["ImageId"] == new
    assert [v["VersionNumber"] for v in ec2.describe_launch_template_versions(
        LaunchTemplateId=template_id)["LaunchTemplateVersions"]] == [1, 2]
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(**{**args, "VersionDescription": "other"})
    assert _code(e) == "IdempotentParameterMismatch" and "web-1-slot-1" in str(e.value)
    # another token: a new version
    c = ec2.create_launch_template_version(**{**args, "ClientToken": "web-1-slot-2"})
    assert c["LaunchTemplateVersion"]["VersionNumber"] == 3
    # tokens go with a reset
    emu.control("POST", "/reset")
    make_image(ec2, emu, "again")
    ec2.create_launch_template(LaunchTemplateName="web-lt", LaunchTemplateData={"InstanceType": "t3.micro"})
    d = ec2.create_launch_template_version(LaunchTemplateName="web-lt", ClientToken="web-1-slot-1",
                                           LaunchTemplateData={"InstanceType": "t3.large"})
    assert d["LaunchTemplateVersion"]["VersionNumber"] == 2


def test_client_token_too_long(ec2, template):
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(LaunchTemplateName="web-lt", ClientToken="t" * 129,
                                           LaunchTemplateData={"InstanceType": "t3.small"})
    assert _code(e) == "InvalidParameterValue"


def test_version_description_at_most_255(emu, template):
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=emu.url,
                       aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                       config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
    ec2.create_launch_template_version(LaunchTemplateName="web-lt", VersionDescription="d" * 255,
                                       LaunchTemplateData={"InstanceType": "t3.small"})
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(LaunchTemplateName="web-lt", VersionDescription="d" * 256,
                                           LaunchTemplateData={"InstanceType": "t3.small"})
    assert _code(e) == "InvalidParameterValue"
    assert len(ec2.describe_launch_template_versions(LaunchTemplateName="web-lt")
               ["LaunchTemplateVersions"]) == 2


def test_missing_template_name_and_id(emu):
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=emu.url,
                       aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                       config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(LaunchTemplateData={"InstanceType": "t3.small"})
    assert _code(e) == "MissingParameter" and "LaunchTemplateName or LaunchTemplateId" in str(e.value)


def test_set_default_version(ec2, template):
    ec2.create_launch_template_version(LaunchTemplateName="web-lt", SourceVersion="1",
                                       LaunchTemplateData={"InstanceType": "t3.large"})
    lt = ec2.modify_launch_template(LaunchTemplateName="web-lt", DefaultVersion="2")["LaunchTemplate"]
    assert (lt["DefaultVersionNumber"], lt["LatestVersionNumber"]) == (2, 2)
    [v] = ec2.describe_launch_template_versions(LaunchTemplateName="web-lt",
                                                Versions=["$Default"])["LaunchTemplateVersions"]
    assert v["VersionNumber"] == 2 and v["LaunchTemplateData"]["InstanceType"] == "t3.large"
    with pytest.raises(ClientError) as e:
        ec2.modify_launch_template(LaunchTemplateName="web-lt", DefaultVersion="7")
    assert _code(e) == "InvalidLaunchTemplateId.VersionNotFound"
    assert ec2.describe_launch_templates()["LaunchTemplates"][0]["DefaultVersionNumber"] == 2


def test_describe_launch_templates_tag_filters(ec2, template):
    ec2.create_launch_template(LaunchTemplateName="other-lt",
                               LaunchTemplateData={"InstanceType": "t3.micro"},
                               TagSpecifications=[{"ResourceType": "launch-template",
                                                   "Tags": [{"Key": "team", "Value": "x"}]}])

    def names(filters):
        return sorted(t["LaunchTemplateName"] for t in
                      ec2.describe_launch_templates(Filters=filters)["LaunchTemplates"])

    assert names([{"Name": "tag:ami-lifecycle:track", "Values": ["web-1"]}]) == ["web-lt"]
    assert names([{"Name": "tag:ami-lifecycle:track", "Values": ["web-2"]}]) == []
    assert names([{"Name": "tag-key", "Values": ["ami-lifecycle:track"]}]) == ["web-lt"]
    assert names([{"Name": "tag-key", "Values": ["team"]}]) == ["other-lt"]
    assert names([]) == ["other-lt", "web-lt"]


def test_describe_launch_templates_shows_tags_changed_after_creation(ec2, template):
    template_id, _ = template
    ec2.create_tags(Resources=[template_id],
                    Tags=[{"Key": "ami-lifecycle:track-default", "Value": "true"}])
    ec2.delete_tags(Resources=[template_id], Tags=[{"Key": "ami-lifecycle:track"}])
    [lt] = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"]
    assert lt["Tags"] == [{"Key": "ami-lifecycle:track-default", "Value": "true"}]
