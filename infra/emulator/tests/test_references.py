"""DescribeImageReferences: id limit, ResourceTypeOptions, SSM parameters, paging."""
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import launch, make_image

LT = "ec2:LaunchTemplate"


def unvalidated(emu):
    """boto3 refuses >10 ids itself; send them anyway to see what the emulator says."""
    import boto3
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=emu.url,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))


def template_with_versions(ec2, name, first_image, later_image, n):
    lt = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": first_image})["LaunchTemplate"]["LaunchTemplateId"]
    for _ in range(n - 1):
        ec2.create_launch_template_version(LaunchTemplateId=lt,
                                           LaunchTemplateData={"ImageId": later_image})
    return lt


def test_more_than_ten_ids_refused(ec2, emu):
    ids = [f"ami-{i:017x}" for i in range(11)]
    with pytest.raises(ClientError) as err:
        unvalidated(emu).describe_image_references(ImageIds=ids, IncludeAllResourceTypes=True)
    e = err.value.response["Error"]
    assert e["Code"] == "InvalidParameterValue" and "ImageId" in e["Message"] and "10" in e["Message"]
    # ten are fine
    ec2.describe_image_references(ImageIds=ids[:10], IncludeAllResourceTypes=True)


def test_neither_types_nor_include_all_is_missing_parameter(emu):
    with pytest.raises(ClientError) as err:
        unvalidated(emu).describe_image_references(ImageIds=["ami-00000000000000001"])
    assert err.value.response["Error"]["Code"] == "MissingParameter"


def test_version_depth_default_ten_and_explicit(ec2, emu):
    pinned = make_image(ec2, emu, "pinned-by-v1")
    newer = make_image(ec2, emu, "in-newer-versions")
    lt = template_with_versions(ec2, "lt-twelve", pinned, newer, 12)
    arn = f"arn:aws:ec2:us-east-1:123456789012:launch-template/{lt}"
    # default: only the 10 newest versions (3..12) are checked -> v1 is not seen
    refs = ec2.describe_image_references(ImageIds=[pinned], IncludeAllResourceTypes=True)
    assert refs["ImageReferences"] == []
    refs = ec2.describe_image_references(ImageIds=[pinned], ResourceTypes=[{"ResourceType": LT}])
    assert refs["ImageReferences"] == []
    deep = [{"ResourceType": LT, "ResourceTypeOptions": [
        {"OptionName": "version-depth", "OptionValues": ["10000"]}]}]
    refs = ec2.describe_image_references(ImageIds=[pinned], ResourceTypes=deep)["ImageReferences"]
    assert [(r["ResourceType"], r["Arn"]) for r in refs] == [(LT, arn)]
    # explicit options win over IncludeAllResourceTypes' defaults
    refs = ec2.describe_image_references(ImageIds=[pinned], IncludeAllResourceTypes=True,
                                         ResourceTypes=deep)["ImageReferences"]
    assert [r["Arn"] for r in refs] == [arn]
    shallow = [{"ResourceType": LT, "ResourceTypeOptions": [
        {"OptionName": "version-depth", "OptionValues": ["1"]}]}]
    assert len(ec2.describe_image_references(ImageIds=[newer], ResourceTypes=shallow)
               ["ImageReferences"]) == 1


@pytest.mark.parametrize("values", [["0"], ["10001"], ["ten"], ["1", "2"]])
def test_version_depth_out_of_range(ec2, values):
    with pytest.raises(ClientError) as err:
        ec2.describe_image_references(ImageIds=["ami-00000000000000001"], ResourceTypes=[
            {"ResourceType": LT, "ResourceTypeOptions": [
                {"OptionName": "version-depth", "OptionValues": values}]}])
    e = err.value.response["Error"]
    assert e["Code"] == "InvalidParameterValue" and "version-depth" in e["Message"]


def test_state_name_option(ec2, emu):
    image_id = make_image(ec2, emu, "inst-ref")
    running = launch(ec2, image_id)
    stopped = launch(ec2, image_id)
    ec2.stop_instances(InstanceIds=[stopped])
    only_stopped = [{"ResourceType": "ec2:Instance", "ResourceTypeOptions": [
        {"OptionName": "state-name", "OptionValues": ["stopped"]}]}]
    refs = ec2.describe_image_references(ImageIds=[image_id], ResourceTypes=only_stopped)
    assert [r["Arn"].rsplit("/", 1)[1] for r in refs["ImageReferences"]] == [stopped]
    all_states = ec2.describe_image_references(ImageIds=[image_id],
                                               ResourceTypes=[{"ResourceType": "ec2:Instance"}])
    assert {r["Arn"].rsplit("/", 1)[1] for r in all_states["ImageReferences"]} == {running, stopped}
    with pytest.raises(ClientError) as err:  # wrong option for the type / bad state
        ec2.describe_image_references(ImageIds=[image_id], ResourceTypes=[
            {"ResourceType": "ec2:Instance", "ResourceTypeOptions": [
                {"OptionName": "state-name", "OptionValues": ["sleeping"]}]}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as err:
        ec2.describe_image_references(ImageIds=[image_id], ResourceTypes=[
            {"ResourceType": "ec2:Instance", "ResourceTypeOptions": [
                {"OptionName": "version-depth", "OptionValues": ["3"]}]}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_ssm_parameters_reference_images(ec2, emu):
    image_id = make_image(ec2, emu, "ssm-ref")
    ssm = emu.client("ssm")
    ssm.put_parameter(Name="/golden/ami", Value=image_id, Type="String", DataType="aws:ec2:image")
    ssm.put_parameter(Name="plain-text", Value=image_id, Type="String")
    ssm.put_parameter(Name="unrelated", Value="ami-0123456789abcdef0", Type="String")
    emu.client("ssm", "eu-west-1").put_parameter(Name="other-region", Value=image_id, Type="String")
    refs = ec2.describe_image_references(ImageIds=[image_id],
                                         ResourceTypes=[{"ResourceType": "ssm:Parameter"}])
    arns = sorted(r["Arn"] for r in refs["ImageReferences"])
    assert arns == ["arn:aws:ssm:us-east-1:123456789012:parameter/golden/ami",
                    "arn:aws:ssm:us-east-1:123456789012:parameter/plain-text"]
    assert len(ec2.describe_image_references(ImageIds=[image_id], IncludeAllResourceTypes=True)
               ["ImageReferences"]) == 2
    # not asked for -> not checked
    assert ec2.describe_image_references(ImageIds=[image_id], ResourceTypes=[
        {"ResourceType": "ec2:Instance"}])["ImageReferences"] == []


def test_max_results_and_next_token(ec2, emu):
    image_id = make_image(ec2, emu, "paged-ref")
    launched = {launch(ec2, image_id) for _ in range(7)}
    seen, token, pages = [], None, 0
    while True:
        kw = {"NextToken": token} if token else {}
        page = ec2.describe_image_references(ImageIds=[image_id], IncludeAllResourceTypes=True,
                                             MaxResults=5, **kw)
        pages += 1
        seen += [r["Arn"].rsplit("/", 1)[1] for r in page["ImageReferences"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 2 and sorted(seen) == sorted(launched)
    with pytest.raises(ClientError) as err:
        unvalidated(emu).describe_image_references(ImageIds=[image_id],
                                                   IncludeAllResourceTypes=True, MaxResults=4)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
