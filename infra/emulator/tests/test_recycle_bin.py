"""Recycle Bin retention rules (rbin REST-JSON): CreateRule, ListRules, GetRule per
account and region, checked against the API model, cleared by reset."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT_B


def _days(n: int) -> dict:
    return {"RetentionPeriodValue": n, "RetentionPeriodUnit": "DAYS"}


@pytest.fixture
def rbin(emu):
    return emu.client("rbin")


def test_a_region_level_and_a_tag_level_rule_are_listed_and_read_back(rbin):
    region = rbin.create_rule(ResourceType="EC2_IMAGE", RetentionPeriod=_days(7),
                              ExcludeResourceTags=[{"ResourceTagKey": "env",
                                                    "ResourceTagValue": "dev"}],
                              LockConfiguration={"UnlockDelay": {"UnlockDelayValue": 7,
                                                                 "UnlockDelayUnit": "DAYS"}})
    tagged = rbin.create_rule(ResourceType="EC2_IMAGE", RetentionPeriod=_days(30),
                              Description="gold images",
                              ResourceTags=[{"ResourceTagKey": "tier",
                                             "ResourceTagValue": "gold"}])
    rbin.create_rule(ResourceType="EBS_SNAPSHOT", RetentionPeriod=_days(14))
    assert region["Status"] == "available" and region["LockState"] == "locked"
    assert len(region["Identifier"]) == 11
    assert region["RuleArn"].endswith(f":123456789012:rule/{region['Identifier']}")

    listed = rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"]
    assert [r["Identifier"] for r in listed] == [region["Identifier"], tagged["Identifier"]]
    # Summaries carry no tags, as on AWS: GetRule does.
    assert "ResourceTags" not in listed[1]
    got = rbin.get_rule(Identifier=tagged["Identifier"])
    assert got["ResourceTags"] == [{"ResourceTagKey": "tier", "ResourceTagValue": "gold"}]
    assert got["RetentionPeriod"] == _days(30) and got["LockState"] == "unlocked"
    got = rbin.get_rule(Identifier=region["Identifier"])
    assert got["ResourceTags"] == [] and got["ExcludeResourceTags"][0]["ResourceTagKey"] == "env"
    by_tag = rbin.list_rules(ResourceType="EC2_IMAGE",
                             ResourceTags=[{"ResourceTagKey": "tier", "ResourceTagValue": "gold"}])
    assert [r["Identifier"] for r in by_tag["Rules"]] == [tagged["Identifier"]]
    assert [r["Identifier"] for r in rbin.list_rules(ResourceType="EC2_IMAGE",
                                                     LockState="locked")["Rules"]] == [
        region["Identifier"]]


def test_rules_are_per_account_and_region_and_reset_clears_them(emu, rbin):
    rbin.create_rule(ResourceType="EBS_SNAPSHOT", RetentionPeriod=_days(3))
    assert emu.client("rbin", region="eu-west-1").list_rules(ResourceType="EBS_SNAPSHOT")["Rules"] == []
    assert emu.client("rbin", account=ACCOUNT_B).list_rules(ResourceType="EBS_SNAPSHOT")["Rules"] == []
    assert len(rbin.list_rules(ResourceType="EBS_SNAPSHOT")["Rules"]) == 1
    emu.control("POST", "/reset")
    assert rbin.list_rules(ResourceType="EBS_SNAPSHOT")["Rules"] == []


def test_list_rules_pages_with_max_results(rbin):
    made = [rbin.create_rule(ResourceType="EBS_SNAPSHOT", RetentionPeriod=_days(n))["Identifier"]
            for n in (1, 2, 3)]
    first = rbin.list_rules(ResourceType="EBS_SNAPSHOT", MaxResults=2)
    assert len(first["Rules"]) == 2 and first["NextToken"]
    second = rbin.list_rules(ResourceType="EBS_SNAPSHOT", MaxResults=2, NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert [r["Identifier"] for r in first["Rules"] + second["Rules"]] == made
    with pytest.raises(ClientError) as e:
        rbin.list_rules(ResourceType="EBS_SNAPSHOT", NextToken="bm90LWEtdG9rZW4=")
    assert e.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize("kwargs, says", [
    # The model: 1-3650 days, required ResourceType, MaxResults 1-1000.
    ({"ResourceType": "EC2_IMAGE", "RetentionPeriod": _days(0)}, "retentionPeriodValue"),
    ({"ResourceType": "EC2_IMAGE", "RetentionPeriod": _days(4000)}, "retentionPeriodValue"),
    # The EBS user guide: snapshots and AMIs at most 365 days.
    ({"ResourceType": "EBS_SNAPSHOT", "RetentionPeriod": _days(366)}, "1 to 365 days"),
    # Exclusion tags and locks are for region-level rules only.
    ({"ResourceType": "EC2_IMAGE", "RetentionPeriod": _days(7),
      "ResourceTags": [{"ResourceTagKey": "a", "ResourceTagValue": "b"}],
      "ExcludeResourceTags": [{"ResourceTagKey": "c", "ResourceTagValue": "d"}]}, "Region-level"),
    ({"ResourceType": "EC2_IMAGE", "RetentionPeriod": _days(7),
      "ExcludeResourceTags": [{"ResourceTagKey": f"k{i}"} for i in range(6)]}, "excludeResourceTags"),
])
def test_create_rule_refuses_what_aws_refuses(emu, kwargs, says):
    # Client-side validation off: the emulator, not botocore, must refuse.
    raw = boto3.client("rbin", region_name="us-east-1", endpoint_url=emu.url,
                       aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                       config=Config(parameter_validation=False,
                                     retries={"total_max_attempts": 1, "mode": "standard"}))
    with pytest.raises(ClientError) as e:
        raw.create_rule(**kwargs)
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Error"]["Code"] == "ValidationException"
    assert says in err["Error"]["Message"], err["Error"]["Message"]
    assert raw.list_rules(ResourceType=kwargs["ResourceType"])["Rules"] == []
    assert emu.control("GET", "/counters")["refused"]["us-east-1"]["rbin:CreateRule"] == 1


def test_a_missing_rule_is_not_found(rbin):
    with pytest.raises(ClientError) as e:
        rbin.get_rule(Identifier="abcdefghijk")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
