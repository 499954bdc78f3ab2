"""EC2 image usage reports: which other accounts use an image the caller owns."""
from __future__ import annotations

import time
import urllib.error
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_B, launch, make_image

ACCOUNT_C = "444455556666"
ALL_TYPES = [{"ResourceType": "ec2:Instance"}, {"ResourceType": "ec2:LaunchTemplate"}]


def error_code(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


@pytest.fixture
def shared(emu, ec2):
    """An image of A shared with B and C; B uses it (2 instances, 1 template), C ran one
    instance and terminated it, and has a template whose newest version uses another image."""
    image_id = make_image(ec2, emu, name="golden")
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={
        "Add": [{"UserId": ACCOUNT_B}, {"UserId": ACCOUNT_C}]})
    launch(ec2, image_id)  # the owner's own use never counts
    b = emu.client("ec2", account=ACCOUNT_B)
    launch(b, image_id)
    launch(b, image_id)
    b.create_launch_template(LaunchTemplateName="b-web", LaunchTemplateData={"ImageId": image_id})
    c = emu.client("ec2", account=ACCOUNT_C)
    gone = launch(c, image_id)
    c.terminate_instances(InstanceIds=[gone])
    c.create_launch_template(LaunchTemplateName="c-old", LaunchTemplateData={"ImageId": image_id})
    c.create_launch_template_version(LaunchTemplateName="c-old",
                                     LaunchTemplateData={"ImageId": "ami-12c6146b"})
    return image_id


def entries(ec2, **kw):
    got = ec2.describe_image_usage_report_entries(**kw)["ImageUsageReportEntries"]
    return sorted((e["AccountId"], e["ResourceType"], e["UsageCount"]) for e in got)


def test_report_lists_other_accounts_use(ec2, shared):
    rid = ec2.create_image_usage_report(ImageId=shared, ResourceTypes=ALL_TYPES)["ReportId"]
    assert rid.startswith("amiur-") and len(rid) == 23
    report = ec2.describe_image_usage_reports(ReportIds=[rid])["ImageUsageReports"][0]
    assert report["State"] == "available"
    assert report["ImageId"] == shared
    assert report["ExpirationTime"] - report["CreationTime"] == timedelta(days=30)
    # C: terminated instance not counted; its template's newest version is another image,
    # but the default depth (20) reaches version 1.
    assert entries(ec2, ReportIds=[rid]) == [(ACCOUNT_B, "ec2:Instance", 2),
                                             (ACCOUNT_B, "ec2:LaunchTemplate", 1),
                                             (ACCOUNT_C, "ec2:LaunchTemplate", 1)]
    one = ec2.describe_image_usage_report_entries(ReportIds=[rid])["ImageUsageReportEntries"][0]
    assert one["ImageId"] == shared and one["ReportId"] == rid and "ReportCreationTime" in one


def test_version_depth_and_account_ids_narrow_the_report(ec2, shared):
    rid = ec2.create_image_usage_report(
        ImageId=shared, AccountIds=[ACCOUNT_C],
        ResourceTypes=[{"ResourceType": "ec2:LaunchTemplate", "ResourceTypeOptions": [
            {"OptionName": "version-depth", "OptionValues": ["1"]}]}])["ReportId"]
    assert entries(ec2, ReportIds=[rid]) == []  # C's newest version uses another image
    report = ec2.describe_image_usage_reports(ReportIds=[rid])["ImageUsageReports"][0]
    assert report["AccountIds"] == [ACCOUNT_C]
    assert report["ResourceTypes"] == [{"ResourceType": "ec2:LaunchTemplate", "ResourceTypeOptions": [
        {"OptionName": "version-depth", "OptionValues": ["1"]}]}]
    rid_b = ec2.create_image_usage_report(ImageId=shared, AccountIds=[ACCOUNT_B],
                                          ResourceTypes=ALL_TYPES)["ReportId"]
    assert entries(ec2, ReportIds=[rid_b]) == [(ACCOUNT_B, "ec2:Instance", 2),
                                               (ACCOUNT_B, "ec2:LaunchTemplate", 1)]


def test_report_is_a_snapshot_taken_at_creation(emu, ec2, shared):
    rid = ec2.create_image_usage_report(ImageId=shared,
                                        ResourceTypes=[{"ResourceType": "ec2:Instance"}])["ReportId"]
    launch(emu.client("ec2", account=ACCOUNT_C), shared)
    assert entries(ec2, ReportIds=[rid]) == [(ACCOUNT_B, "ec2:Instance", 2)]
    newer = ec2.create_image_usage_report(ImageId=shared,
                                          ResourceTypes=[{"ResourceType": "ec2:Instance"}])["ReportId"]
    assert entries(ec2, ReportIds=[newer]) == [(ACCOUNT_B, "ec2:Instance", 2),
                                               (ACCOUNT_C, "ec2:Instance", 1)]


def test_report_pending_until_the_configured_delay(emu, ec2, shared):
    emu.control("POST", "/config", {"usage_report_delay_seconds": 1.0})
    rid = ec2.create_image_usage_report(ImageId=shared, ResourceTypes=ALL_TYPES)["ReportId"]
    assert ec2.describe_image_usage_reports(ReportIds=[rid])["ImageUsageReports"][0]["State"] == "pending"
    assert entries(ec2, ReportIds=[rid]) == []  # nothing to read yet
    pending = ec2.describe_image_usage_reports(Filters=[{"Name": "state", "Values": ["pending"]}])
    assert [r["ReportId"] for r in pending["ImageUsageReports"]] == [rid]
    time.sleep(1.2)
    assert ec2.describe_image_usage_reports(ReportIds=[rid])["ImageUsageReports"][0]["State"] == "available"
    assert len(entries(ec2, ReportIds=[rid])) == 3


def test_error_state_through_the_control_api(emu, ec2, shared):
    rid = ec2.create_image_usage_report(ImageId=shared, ResourceTypes=ALL_TYPES)["ReportId"]
    emu.control("POST", f"/image-usage-reports/{rid}/fail", {"reason": "Internal error"})
    report = ec2.describe_image_usage_reports(ReportIds=[rid])["ImageUsageReports"][0]
    assert (report["State"], report["StateReason"]) == ("error", "Internal error")
    assert entries(ec2, ReportIds=[rid]) == []
    with pytest.raises(urllib.error.HTTPError) as e:
        emu.control("POST", "/image-usage-reports/amiur-0123456789abcdef0/fail", {})
    assert e.value.code == 404


def test_client_token_idempotency(ec2, shared):
    first = ec2.create_image_usage_report(ImageId=shared, ResourceTypes=ALL_TYPES,
                                          ClientToken="tok-1")["ReportId"]
    again = ec2.create_image_usage_report(ImageId=shared, ResourceTypes=ALL_TYPES,
                                          ClientToken="tok-1")["ReportId"]
    assert again == first
    assert len(ec2.describe_image_usage_reports()["ImageUsageReports"]) == 1
    assert error_code(lambda: ec2.create_image_usage_report(
        ImageId=shared, ResourceTypes=[{"ResourceType": "ec2:Instance"}],
        ClientToken="tok-1")) == "IdempotentParameterMismatch"


def test_only_the_owner_may_report_and_bad_input_is_refused(emu, ec2, shared):
    b = emu.client("ec2", account=ACCOUNT_B)
    # B sees the shared image but does not own it.
    assert error_code(lambda: b.create_image_usage_report(
        ImageId=shared, ResourceTypes=ALL_TYPES)) == "InvalidAMIID.NotFound"
    assert error_code(lambda: ec2.create_image_usage_report(
        ImageId="img-1", ResourceTypes=ALL_TYPES)) == "InvalidAMIID.Malformed"
    assert error_code(lambda: ec2.create_image_usage_report(
        ImageId=shared, ResourceTypes=[{"ResourceType": "ec2:Volume"}])) == "InvalidParameterValue"
    assert error_code(lambda: ec2.create_image_usage_report(
        ImageId=shared, ResourceTypes=[{"ResourceType": "ec2:Instance", "ResourceTypeOptions": [
            {"OptionName": "version-depth", "OptionValues": ["5"]}]}])) == "InvalidParameterValue"
    assert error_code(lambda: ec2.create_image_usage_report(
        ImageId=shared, ResourceTypes=[{"ResourceType": "ec2:LaunchTemplate", "ResourceTypeOptions": [
            {"OptionName": "version-depth", "OptionValues": ["10001"]}]}])) == "InvalidParameterValue"
    assert error_code(lambda: ec2.create_image_usage_report(
        ImageId=shared, ResourceTypes=ALL_TYPES, AccountIds=["12345"])) == "InvalidParameterValue"
    assert error_code(lambda: ec2.create_image_usage_report(
        ImageId=shared, ResourceTypes=ALL_TYPES, AccountIds=[ACCOUNT_B] * 201)) == "InvalidParameterValue"
    assert error_code(lambda: ec2.create_image_usage_report(
        ImageId=shared, ResourceTypes=ALL_TYPES,
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]}])
    ) == "InvalidParameterValue"
    assert ec2.describe_image_usage_reports()["ImageUsageReports"] == []  # nothing made
    assert b.describe_image_usage_reports()["ImageUsageReports"] == []


def test_paging_filters_tags_and_delete(ec2, shared):
    tagged = ec2.create_image_usage_report(
        ImageId=shared, ResourceTypes=ALL_TYPES, TagSpecifications=[
            {"ResourceType": "image-usage-report", "Tags": [{"Key": "run", "Value": "r1"}]}])["ReportId"]
    other = ec2.create_image_usage_report(ImageId=shared, ResourceTypes=ALL_TYPES)["ReportId"]
    by_tag = ec2.describe_image_usage_reports(Filters=[{"Name": "tag:run", "Values": ["r1"]}])
    assert [r["ReportId"] for r in by_tag["ImageUsageReports"]] == [tagged]
    assert by_tag["ImageUsageReports"][0]["Tags"] == [{"Key": "run", "Value": "r1"}]
    # Entries of both reports, one per page.
    seen, token = [], None
    while True:
        kw = {"ImageIds": [shared], "MaxResults": 1}
        if token:
            kw["NextToken"] = token
        page = ec2.describe_image_usage_report_entries(**kw)
        assert len(page["ImageUsageReportEntries"]) <= 1
        seen += [(e["ReportId"], e["AccountId"], e["ResourceType"]) for e in page["ImageUsageReportEntries"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == 6 and len(set(seen)) == 6
    assert entries(ec2, Filters=[{"Name": "account-id", "Values": [ACCOUNT_C]},
                                 {"Name": "resource-type", "Values": ["ec2:LaunchTemplate"]}]) == \
        [(ACCOUNT_C, "ec2:LaunchTemplate", 1)] * 2
    day = ec2.describe_image_usage_reports(ReportIds=[tagged])["ImageUsageReports"][0]["CreationTime"]
    assert len(ec2.describe_image_usage_reports(Filters=[
        {"Name": "creation-time", "Values": [day.strftime("%Y-%m-%dT*")]}])["ImageUsageReports"]) == 2
    assert error_code(lambda: ec2.describe_image_usage_reports(
        Filters=[{"Name": "owner", "Values": ["x"]}])) == "InvalidParameterValue"
    assert error_code(lambda: ec2.describe_image_usage_report_entries(
        NextToken="bogus")) == "InvalidPaginationToken"

    assert ec2.delete_image_usage_report(ReportId=other)["Return"] is True
    assert [r["ReportId"] for r in ec2.describe_image_usage_reports()["ImageUsageReports"]] == [tagged]
    assert error_code(lambda: ec2.delete_image_usage_report(ReportId=other)) == \
        "InvalidImageUsageReportId.NotFound"
    assert error_code(lambda: ec2.describe_image_usage_reports(ReportIds=[other])) == \
        "InvalidImageUsageReportId.NotFound"
