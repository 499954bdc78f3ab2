"""EventBridge wiring of template.yaml and infra/forwarder.yaml, checked with AWS semantics.

Every rule in the templates is extracted (SAM `EventBridgeRule`/`CloudWatchEvent`/
`Schedule` event sources and `AWS::Events::Rule` resources), resolved for a parameter
scenario, and checked against AWS-shaped events:

* the AWS-shaped samples in tests/fixtures/events/ (inside the repository);
* mutations of them that must NOT match (another source, another detail-type, ...).

Matching is moto's EventBridge implementation, in process, through boto3 inside
`mock_aws`: each pattern is installed with PutRule, targeted at an SQS queue, the
event is sent with PutEvents and the queue tells whether it was delivered. (moto 5.2's
TestEventPattern API is a stub that returns no result, so the rule -> target routing
path is used instead; it is the same pattern matcher moto applies to real rules.)

Run: make pattern-test  (or .venv/tools/bin/pytest infra/tests)
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FORWARDER = ROOT / "infra" / "forwarder.yaml"
OUR_EVENTS = ROOT / "tests" / "fixtures" / "events"
DEPLOYMENT = "ami-lifecycle"  # DeploymentName default


# ----------------------------------------------------------------------------
# A YAML loader that understands CloudFormation short-form tags
# ----------------------------------------------------------------------------

class CfnLoader(yaml.SafeLoader):
    """SafeLoader + !Ref/!Sub/!GetAtt/!If/... turned into their long forms."""


def _construct(tag: str):
    name = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in ["Ref", "Sub", "GetAtt", "If", "Equals", "Not", "And", "Or", "Join", "Select",
             "Split", "FindInMap", "ImportValue", "Base64", "Cidr", "GetAZs", "Condition",
             "Transform", "ToJsonString", "Length"]:
    CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


# ----------------------------------------------------------------------------
# Resolving intrinsics for one parameter scenario
# ----------------------------------------------------------------------------

NO_VALUE = object()
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::StackName": "ami-lifecycle", "AWS::URLSuffix": "amazonaws.com"}


class Resolver:
    def __init__(self, template: dict[str, Any], overrides: dict[str, str] | None = None):
        self.t = template
        self.params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.params.update(overrides or {})
        self.conditions: dict[str, bool] = {}
        for name in template.get("Conditions", {}):
            self.condition(name)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.t["Conditions"][name]))
        return self.conditions[name]

    def sub(self, text: str, extra: dict[str, Any] | None = None) -> str:
        def repl(m: re.Match[str]) -> str:
            key = m.group(1)
            if extra and key in extra:
                return str(extra[key])
            if key in self.params:
                return self.params[key]
            if key in PSEUDO:
                return PSEUDO[key]
            return "${" + key + "}"  # GetAtt-style references stay symbolic

        return re.sub(r"\$\{([^}!]+)\}", repl, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(v) for v in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, val), = node.items()
            if key == "Ref":
                if val == "AWS::NoValue":
                    return NO_VALUE
                if val in self.params:
                    p = self.t["Parameters"][val]
                    v = self.params[val]
                    return v.split(",") if p["Type"] == "CommaDelimitedList" else v
                return PSEUDO.get(val, {"Ref": val})
            if key == "Fn::Sub":
                if isinstance(val, list):
                    return self.sub(val[0], {k: self.resolve(v) for k, v in val[1].items()})
                return self.sub(val)
            if key == "Fn::If":
                cond, yes, no = val
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in val)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(val[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in val)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in val)
            if key == "Condition":
                return self.condition(val)
            if key == "Fn::Join":
                sep, items = val
                return sep.join(str(i) for i in self.resolve(items))
            if key == "Fn::Split":  # CloudFormation: a delimiter not found gives the whole string
                sep, text = val
                return str(self.resolve(text)).split(sep)
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}


# ----------------------------------------------------------------------------
# Extracting every EventBridge rule
# ----------------------------------------------------------------------------

class Rule:
    def __init__(self, origin: str, name: str, target: str, pattern: dict | None,
                 schedule: str | None, raw_name: Any, target_props: dict[str, Any]):
        self.origin, self.name, self.target = origin, name, target
        self.pattern, self.schedule, self.raw_name = pattern, schedule, raw_name
        self.target_props = target_props

    def __repr__(self) -> str:
        return f"Rule({self.name})"


def _target_name(arn: Any) -> str:
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        return arn["Fn::GetAtt"][0]
    if isinstance(arn, dict) and "Ref" in arn:
        return arn["Ref"]
    return str(arn)


def extract_rules(template: dict[str, Any], overrides: dict[str, str] | None = None) -> list[Rule]:
    r = Resolver(template, overrides)
    rules: list[Rule] = []
    for logical_id, res in template["Resources"].items():
        if "Condition" in res and not r.condition(res["Condition"]):
            continue
        rtype, props = res["Type"], res.get("Properties", {})
        if rtype == "AWS::Serverless::Function":
            for ev_id, ev in props.get("Events", {}).items():
                ep = ev.get("Properties", {})
                if ev["Type"] in ("EventBridgeRule", "CloudWatchEvent"):
                    raw_name = ep.get("RuleName")
                    rules.append(Rule(f"{logical_id}.{ev_id}", r.resolve(raw_name) if raw_name else f"{logical_id}{ev_id}",
                                      logical_id, r.resolve(ep["Pattern"]), None, raw_name, r.resolve(ep)))
                elif ev["Type"] in ("Schedule", "ScheduleV2"):
                    raw_name = ep.get("Name")
                    rules.append(Rule(f"{logical_id}.{ev_id}", r.resolve(raw_name) if raw_name else f"{logical_id}{ev_id}",
                                      logical_id, None, r.resolve(ep.get("Schedule") or ep.get("ScheduleExpression")),
                                      raw_name, r.resolve(ep)))
        elif rtype == "AWS::Events::Rule":
            rp = r.resolve(props)
            for target in rp.get("Targets", []):
                rules.append(Rule(logical_id, rp.get("Name", logical_id), _target_name(props_target_arn(props, target)),
                                  rp.get("EventPattern"), rp.get("ScheduleExpression"), props.get("Name"), target))
    return rules


def props_target_arn(props: dict[str, Any], resolved_target: dict[str, Any]) -> Any:
    for t in props.get("Targets", []):
        if t.get("Id") == resolved_target.get("Id"):
            return t["Arn"]
    return resolved_target.get("Arn")


# ----------------------------------------------------------------------------
# moto-backed matcher
# ----------------------------------------------------------------------------

class Matcher:
    """PutRule + SQS target + PutEvents in moto; True when the event is delivered."""

    def __init__(self) -> None:
        self.events = boto3.client("events", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.queue = self.sqs.create_queue(QueueName="pattern-probe")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def matches(self, pattern: dict[str, Any], event: dict[str, Any]) -> bool:
        self.events.put_rule(Name="probe", EventPattern=json.dumps(pattern))  # validates the pattern too
        self.events.put_targets(Rule="probe", Targets=[{"Id": "q", "Arn": self.queue_arn}])
        try:
            out = self.events.put_events(Entries=[{
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event.get("resources", []),
            }])
            assert out["FailedEntryCount"] == 0, out
            got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            for m in got:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
            if got:
                delivered = json.loads(got[0]["Body"])
                assert delivered["detail"] == event["detail"], "the whole event must reach the target"
            return bool(got)
        finally:
            self.events.remove_targets(Rule="probe", Ids=["q"])
            self.events.delete_rule(Name="probe")


def _flatten_like_eventbridge(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
    """moto's flattening, plus what EventBridge does and moto 5.2 does not: an array of
    objects is flattened too, each leaf path collecting the values of every element, so
    `requestParameters.resourcesSet.items.resourceId` matches when any item does (AWS:
    "If the value in the event is an array, then the event pattern matches if the
    intersection of the event pattern array and the event array is non-empty")."""
    if result is None:
        result = {}
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict) and v:
                _flatten_like_eventbridge(v, key, result)
            elif isinstance(v, list) and v and all(isinstance(i, dict) for i in v):
                for item in v:
                    for leaf, value in _flatten_like_eventbridge(item, key).items():
                        values = value if isinstance(value, list) else [value]
                        result.setdefault(leaf, []).extend(values)
            else:
                result[key] = v
    return result


@pytest.fixture(scope="module")
def matcher():
    from unittest import mock

    from moto.events.models import EventPattern

    with mock_aws(), mock.patch.object(EventPattern, "_flatten_dict", staticmethod(_flatten_like_eventbridge)):
        yield Matcher()


# ----------------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------------

def ev(name: str) -> dict[str, Any]:
    for folder in (OUR_EVENTS,):
        p = folder / name
        if p.exists():
            return json.loads(p.read_text())
    raise FileNotFoundError(name)


def mutate(name: str, **changes: Any) -> dict[str, Any]:
    e = copy.deepcopy(ev(name))
    for path, value in changes.items():
        node = e
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k.replace("_", "-")]
        node[keys[-1].replace("_", "-")] = value
    return e


def cloudtrail_tagging(name: str, *resource_ids: str) -> dict[str, Any]:
    """A CloudTrail CreateTags/DeleteTags sample retargeted at other resources."""
    e = copy.deepcopy(ev(name))
    e["detail"]["requestParameters"]["resourcesSet"]["items"] = [{"resourceId": r} for r in resource_ids]
    return e


def all_fixture_names() -> list[str]:
    names = sorted(p.name for p in OUR_EVENTS.glob("*.json"))
    return names


def test_fixtures_present():
    ours = {p.name for p in OUR_EVENTS.glob("*.json")}
    assert {"ami-state-change-available.json", "ami-state-change-failed.json",
            "scheduled-event.json", "tag-change-on-image.json"} <= ours, f"missing AWS sample fixtures in {OUR_EVENTS}"
    assert len(ours) >= 14


@pytest.mark.parametrize("name", all_fixture_names())
def test_fixtures_are_aws_shaped(name):
    e = ev(name)
    for key in ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"):
        assert key in e, f"{name} lacks {key}"
    assert isinstance(e["resources"], list) and isinstance(e["detail"], dict)
    if e["detail-type"] == "EC2 AMI State Change":
        assert set(e["detail"]) == {"RequestId", "ImageId", "State", "ErrorMessage"}
        assert e["resources"][0] == f"arn:aws:ec2:{e['region']}::image/{e['detail']['ImageId']}"
    if e["detail-type"] == "Tag Change on Resource":
        assert isinstance(e["detail"]["version"], int)
        deleted_or_changed = set(e["detail"]["changed-tag-keys"])
        assert deleted_or_changed, name


# ----------------------------------------------------------------------------
# Expectations: every rule of each template, by resolved name
# ----------------------------------------------------------------------------

AMI_AVAILABLE = ["ami-state-change-available.json", "ami-state-change-available-replica.json"]
AMI_FAILED = ["ami-state-change-failed.json"]
SHARE_TAG_EVENTS = ["tag-change-on-image.json", "tag-change-on-image-share-with-deleted.json",
                    "tag-change-on-image-several-keys.json"]
# publish's own writes (a latest-image parameter updated): what downstream pipelines get
PARAMETER_CHANGE = "parameter-store-change-update.json"


def parameter_change(name: str, operation: str = "Update") -> dict[str, Any]:
    """The Parameter Store Change sample for another parameter name (resources follow)."""
    e = mutate(PARAMETER_CHANGE, detail__name=name, detail__operation=operation)
    e["resources"] = [f"arn:aws:ssm:{e['region']}:{e['account']}:parameter{name}"]
    return e


def other_source(name: str) -> dict[str, Any]:
    return mutate(name, source="custom.ec2")


def other_detail_type(name: str, dt: str = "EC2 Instance State-change Notification") -> dict[str, Any]:
    return mutate(name, detail_type=dt)


# name -> (target function, events that must match, events that must not match)
TEMPLATE_EXPECTATIONS: dict[str, tuple[str, list[Any], list[Any]]] = {
    f"{DEPLOYMENT}-create-image-ami-failed": (
        "CreateImageFunction",
        AMI_FAILED,
        AMI_AVAILABLE + ["ami-state-change-deregistered.json", "ami-state-change-disabled.json",
                         "scheduled-event.json", "tag-change-on-image.json",
                         ("other source", lambda: other_source("ami-state-change-failed.json")),
                         ("other detail-type", lambda: other_detail_type("ami-state-change-failed.json"))],
    ),
    f"{DEPLOYMENT}-replicate-ami-state": (
        "ReplicateFunction",
        AMI_AVAILABLE + AMI_FAILED,
        ["ami-state-change-deregistered.json", "ami-state-change-disabled.json", "scheduled-event.json",
         "tag-change-on-image.json", "cloudtrail-create-tags.json",
         ("other source", lambda: other_source("ami-state-change-available.json")),
         ("other detail-type", lambda: other_detail_type("ami-state-change-available.json")),
         ("lower-case state", lambda: mutate("ami-state-change-available.json", detail__State="Available"))],
    ),
    f"{DEPLOYMENT}-share-tag-change": (
        "ShareFunction",
        SHARE_TAG_EVENTS,
        ["tag-change-on-image-other-key.json", "tag-change-on-instance.json", "tag-change-on-snapshot.json",
         "ami-state-change-available.json", "scheduled-event.json", "cloudtrail-create-tags.json",
         ("other source", lambda: other_source("tag-change-on-image.json")),
         ("other detail-type", lambda: other_detail_type("tag-change-on-image.json", "Tag Change on Image")),
         ("other service", lambda: mutate("tag-change-on-image.json", detail__service="rds"))],
    ),
    f"{DEPLOYMENT}-share-cloudtrail": (
        "ShareFunction",
        ["cloudtrail-create-tags.json", "cloudtrail-delete-tags.json",
         # a multi-resource call naming an image matches (share handles its images)
         ("instance + image", lambda: cloudtrail_tagging("cloudtrail-create-tags.json", "i-0123456789abcdef0",
                                                          "ami-0abcdef1234567890"))],
        ["cloudtrail-run-instances.json", "tag-change-on-image.json", "ami-state-change-available.json",
         ("other event source", lambda: mutate("cloudtrail-create-tags.json", detail__eventSource="rds.amazonaws.com")),
         ("instance tagging", lambda: cloudtrail_tagging("cloudtrail-create-tags.json", "i-0123456789abcdef0")),
         ("instance tag deletion", lambda: cloudtrail_tagging("cloudtrail-delete-tags.json", "i-0123456789abcdef0")),
         ("snapshot + volume tagging", lambda: cloudtrail_tagging("cloudtrail-create-tags.json", "snap-0123456789abcdef0",
                                                                   "vol-0123456789abcdef0"))],
    ),
    # Only available images: a new one here, or a replica elsewhere (forwarded). Never
    # its own parameter writes (no loop), never failed or retired images.
    f"{DEPLOYMENT}-publish-ami-available": (
        "PublishFunction",
        AMI_AVAILABLE,
        AMI_FAILED + ["ami-state-change-deregistered.json", "ami-state-change-disabled.json",
                      "scheduled-event.json", "tag-change-on-image.json", "cloudtrail-create-tags.json",
                      PARAMETER_CHANGE,
                      ("other source", lambda: other_source("ami-state-change-available.json")),
                      ("other detail-type", lambda: other_detail_type("ami-state-change-available.json")),
                      ("lower-case state", lambda: mutate("ami-state-change-available.json", detail__State="Available")),
                      ("pending", lambda: mutate("ami-state-change-available.json", detail__State="pending"))],
    ),
    f"{DEPLOYMENT}-reports": (
        "ReportsTopic",
        ["report-partial.json",
         ("failed report", lambda: mutate("report-ok.json", detail__failed=3, detail__outcome="failed")),
         # an image with managed-by but no valid seal: nothing failed, still an alert
         ("unsealed image", lambda: mutate("report-ok.json", detail__counts={"kept": 2, "unsealed": 1})),
         ("name squatted", lambda: mutate("report-ok.json", detail__counts={"created": 1, "name-squatted": 1})),
         # two instances claim one readable lineage name: publish refuses both
         ("name collision", lambda: mutate("report-ok.json", detail__function="publish",
                                           detail__counts={"published": 1, "name-collision": 2}))],
        ["report-ok.json", "ami-state-change-failed.json", "scheduled-event.json",
         ("zero unsealed", lambda: mutate("report-ok.json", detail__counts={"kept": 2, "unsealed": 0})),
         ("refused, not unsealed", lambda: mutate("report-ok.json", detail__counts={"refused": 2})),
         ("zero name collisions", lambda: mutate("report-ok.json", detail__counts={"published": 2, "name-collision": 0})),
         ("held by a pin, not alarmed", lambda: mutate("report-ok.json", detail__counts={"pinned": 1, "held": 1})),
         ("other source", lambda: mutate("report-partial.json", source="not-ami-lifecycle")),
         ("other detail-type", lambda: mutate("report-partial.json", detail_type="AMI Lifecycle Heartbeat"))],
    ),
}

SCHEDULES = {  # rule name -> (target, default expression)
    f"{DEPLOYMENT}-schedule-daily": ("CreateImageFunction", "cron(0 3 * * ? *)"),
    f"{DEPLOYMENT}-schedule-weekly": ("CreateImageFunction", "cron(0 4 ? * SUN *)"),
    f"{DEPLOYMENT}-create-image-reconcile": ("CreateImageFunction", "rate(1 hour)"),
    f"{DEPLOYMENT}-replicate-reconcile": ("ReplicateFunction", "rate(1 hour)"),
    f"{DEPLOYMENT}-share-reconcile": ("ShareFunction", "rate(1 hour)"),
    f"{DEPLOYMENT}-publish-reconcile": ("PublishFunction", "rate(1 hour)"),
    f"{DEPLOYMENT}-cleanup": ("CleanupFunction", "cron(30 5 * * ? *)"),
}

ALL_ON = {"EnableCloudTrailShareRule": "true"}  # every rule present; NotifyAllReports tested on its own


@pytest.fixture(scope="module")
def template():
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def forwarder():
    return load_template(FORWARDER)


def _event(item: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(item, tuple):
        return item[0], item[1]()
    return item, ev(item)


def test_rules_are_all_known(template):
    default = {r.name for r in extract_rules(template)}
    all_on = {r.name for r in extract_rules(template, ALL_ON)}
    assert all_on == set(TEMPLATE_EXPECTATIONS) | set(SCHEDULES), "a rule without expectations here"
    assert default == all_on - {f"{DEPLOYMENT}-share-cloudtrail"}, "CloudTrail rule must be off by default"


@pytest.mark.parametrize("rule_name", sorted(TEMPLATE_EXPECTATIONS))
def test_template_patterns(template, matcher, rule_name):
    target, must, must_not = TEMPLATE_EXPECTATIONS[rule_name]
    (rule,) = [r for r in extract_rules(template, ALL_ON) if r.name == rule_name]
    assert rule.target == target
    assert rule.pattern, rule_name
    for item in must:
        label, event = _event(item)
        assert matcher.matches(rule.pattern, event), f"{rule_name} must match {label}"
    for item in must_not:
        label, event = _event(item)
        assert not matcher.matches(rule.pattern, event), f"{rule_name} must NOT match {label}"


def test_reports_rule_notify_all(template, matcher):
    (rule,) = [r for r in extract_rules(template, {"NotifyAllReports": "true"}) if r.name == f"{DEPLOYMENT}-reports"]
    assert matcher.matches(rule.pattern, ev("report-ok.json"))
    assert matcher.matches(rule.pattern, ev("report-partial.json"))
    assert not matcher.matches(rule.pattern, ev("ami-state-change-failed.json"))
    (default,) = [r for r in extract_rules(template) if r.name == f"{DEPLOYMENT}-reports"]
    assert default.pattern["detail"]["$or"] == [
        {"failed": [{"numeric": [">", 0]}]},
        {"counts": {"unsealed": [{"numeric": [">", 0]}]}},
        {"counts": {"name-squatted": [{"numeric": [">", 0]}]}},
        {"counts": {"missed": [{"numeric": [">", 0]}]}},
        {"counts": {"stale": [{"numeric": [">", 0]}]}},
        {"counts": {"late": [{"numeric": [">", 0]}]}},
        {"counts": {"name-collision": [{"numeric": [">", 0]}]}},
    ]


def test_no_pattern_rule_matches_scheduled_events(template, matcher):
    for rule in extract_rules(template, ALL_ON):
        if rule.pattern:
            for name in ("scheduled-event.json", "scheduled-event-schedule-weekly.json", "scheduled-event-cleanup.json"):
                assert not matcher.matches(rule.pattern, ev(name)), f"{rule.name} matched {name}"


def test_schedules(template):
    rules = {r.name: r for r in extract_rules(template) if r.schedule}
    assert set(rules) == set(SCHEDULES)
    for name, (target, default_expr) in SCHEDULES.items():
        assert rules[name].target == target, name
        assert rules[name].schedule == default_expr, name


def test_create_image_schedule_rule_names(template):
    """Rule Name is exactly ${DeploymentName}-schedule-<schedule>, one per SCHEDULES entry."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    schedules = env["SCHEDULES"].split(",")
    found = []
    for ev_id, e in template["Resources"]["CreateImageFunction"]["Properties"]["Events"].items():
        if e["Type"] != "Schedule" or ev_id == "Reconcile":
            continue
        raw = e["Properties"]["Name"]
        assert isinstance(raw, dict) and set(raw) == {"Fn::Sub"}, ev_id
        m = re.fullmatch(r"\$\{DeploymentName\}-schedule-([a-z0-9-]+)", raw["Fn::Sub"])
        assert m, f"{ev_id}: {raw['Fn::Sub']!r} is not ${{DeploymentName}}-schedule-<name>"
        found.append(m.group(1))
        assert "Input" not in e["Properties"] and "InputPath" not in e["Properties"], "target must get the whole event"
    assert sorted(found) == sorted(schedules)
    # Parameter per schedule, and the function can read the name back from the ARN.
    assert {"DailySchedule", "WeeklySchedule"} <= set(template["Parameters"])
    arn = ev("scheduled-event-schedule-weekly.json")["resources"][0]
    assert arn.rsplit("-schedule-", 1)[1] == "weekly"
    for name in ("other-deployment", "a1"):
        resolved = Resolver(template, {"DeploymentName": name}).resolve(
            template["Resources"]["CreateImageFunction"]["Properties"]["Events"]["DailySchedule"]["Properties"]["Name"])
        assert resolved == f"{name}-schedule-daily"


def test_every_target_has_retry_and_dead_letter(template):
    for rule in extract_rules(template, ALL_ON):
        props = rule.target_props
        assert props.get("RetryPolicy", {}).keys() >= {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"}, rule.name
        assert props.get("DeadLetterConfig", {}).get("Arn") == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}, rule.name
        for forbidden in ("Input", "InputPath", "InputTransformer"):
            assert forbidden not in props, f"{rule.name}: target must receive the whole event"


def test_dead_letter_queue_policy_covers_every_rule(template):
    r = Resolver(template, ALL_ON)
    policy = r.resolve(template["Resources"]["EventsDeadLetterQueuePolicy"]["Properties"])
    (stmt,) = policy["PolicyDocument"]["Statement"]
    assert stmt["Principal"] == {"Service": "events.amazonaws.com"}
    allowed = {a.rsplit("/", 1)[1] for a in stmt["Condition"]["ArnEquals"]["aws:SourceArn"]}
    assert allowed == {rule.name for rule in extract_rules(template, ALL_ON)}


# ----------------------------------------------------------------------------
# Forwarder
# ----------------------------------------------------------------------------

def test_forwarder_rules(forwarder, matcher):
    overrides = {"HomeRegion": "eu-central-1", "EnableCloudTrailForward": "true"}
    rules = {r.name: r for r in extract_rules(forwarder, overrides)}
    assert set(rules) == {f"{DEPLOYMENT}-forward-ami-state", f"{DEPLOYMENT}-forward-tag-change",
                          f"{DEPLOYMENT}-forward-cloudtrail", f"{DEPLOYMENT}-forward-parameter-change"}
    for rule in rules.values():
        t = rule.target_props
        assert t["Arn"] == "arn:aws:events:eu-central-1:123456789012:event-bus/default"
        assert t["RoleArn"] == {"Fn::GetAtt": ["ForwarderRole", "Arn"]}
        assert {"RetryPolicy", "DeadLetterConfig"} <= set(t)
    ami = rules[f"{DEPLOYMENT}-forward-ami-state"].pattern
    for name in AMI_AVAILABLE + AMI_FAILED:
        assert matcher.matches(ami, ev(name)), name
    assert not matcher.matches(ami, ev("tag-change-on-image.json"))
    tag = rules[f"{DEPLOYMENT}-forward-tag-change"].pattern
    for name in SHARE_TAG_EVENTS:
        assert matcher.matches(tag, ev(name)), name
    for name in ("tag-change-on-image-other-key.json", "tag-change-on-instance.json", "ami-state-change-failed.json"):
        assert not matcher.matches(tag, ev(name)), name
    trail = rules[f"{DEPLOYMENT}-forward-cloudtrail"].pattern
    assert matcher.matches(trail, ev("cloudtrail-create-tags.json"))
    assert not matcher.matches(trail, cloudtrail_tagging("cloudtrail-create-tags.json", "i-0123456789abcdef0"))
    params = rules[f"{DEPLOYMENT}-forward-parameter-change"].pattern
    assert matcher.matches(params, ev(PARAMETER_CHANGE))
    assert not matcher.matches(params, ev("ami-state-change-available.json"))


# (label, event, part of this deployment's published parameters?)
PARAMETER_EVENTS = [
    ("latest updated", lambda: ev(PARAMETER_CHANGE), True),
    ("latest created", lambda: parameter_change(f"/ami-lifecycle/{DEPLOYMENT}/db-2/latest", "Create"), True),
    ("latest labelled", lambda: parameter_change(f"/ami-lifecycle/{DEPLOYMENT}/web-1/latest", "LabelParameterVersion"), True),
    ("pin deleted (amictl unpin)", lambda: parameter_change(f"/ami-lifecycle/{DEPLOYMENT}/web-1/pinned", "Delete"), True),
    ("another deployment", lambda: parameter_change("/ami-lifecycle/prod2/web-1/latest"), False),
    # a deployment whose name only starts with this one's: the prefix ends with "/"
    ("a deployment named like this one", lambda: parameter_change(f"/ami-lifecycle/{DEPLOYMENT}-2/web-1/latest"), False),
    ("an unrelated parameter", lambda: parameter_change("/app/db-url"), False),
    ("AWS's public AMI parameter path", lambda: parameter_change(
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"), False),
    ("other source", lambda: mutate(PARAMETER_CHANGE, source="custom.ssm"), False),
    ("policy action, not a change", lambda: mutate(PARAMETER_CHANGE, detail_type="Parameter Store Policy Action"), False),
    ("an AMI event", lambda: ev("ami-state-change-available.json"), False),
]


def published_parameter_pattern(template: dict[str, Any], deployment: str = DEPLOYMENT) -> dict[str, Any]:
    out = template["Outputs"]["PublishedParameterEventPattern"]
    assert out.get("Description"), "say what the pattern is for"
    return json.loads(Resolver(template, {"DeploymentName": deployment}).resolve(out["Value"]))


def test_published_parameter_event_pattern(template, matcher):
    """The Output downstream pipelines put on their rule: this deployment's parameters only."""
    pattern = published_parameter_pattern(template)
    for label, event, wanted in PARAMETER_EVENTS:
        assert matcher.matches(pattern, event()) == wanted, label
    other = published_parameter_pattern(template, "prod2")
    assert matcher.matches(other, parameter_change("/ami-lifecycle/prod2/web-1/latest"))
    assert not matcher.matches(other, ev(PARAMETER_CHANGE))


def test_forwarder_forwards_what_the_output_pattern_selects(template, forwarder, matcher):
    """Other regions' parameter changes reach the home bus: the forwarder's rule is the
    Output's pattern, for any deployment name."""
    for name in (DEPLOYMENT, "prod2"):
        (rule,) = [r for r in extract_rules(forwarder, {"HomeRegion": "eu-central-1", "DeploymentName": name})
                   if r.name == f"{name}-forward-parameter-change"]
        assert rule.pattern == published_parameter_pattern(template, name)
    (rule,) = [r for r in extract_rules(forwarder, {"HomeRegion": "eu-central-1"})
               if r.name.endswith("-forward-parameter-change")]
    for label, event, wanted in PARAMETER_EVENTS:
        assert matcher.matches(rule.pattern, event()) == wanted, label


def test_no_function_is_invoked_by_parameter_changes(template, matcher):
    """publish writes parameters; a rule matching their changes would invoke it again."""
    for rule in extract_rules(template, ALL_ON):
        if rule.pattern and rule.target != "ReportsTopic":
            for label, event, _ in PARAMETER_EVENTS[:4]:
                assert not matcher.matches(rule.pattern, event()), f"{rule.name} matched {label}"


def test_forwarder_home_rules_see_forwarded_events(template, forwarder, matcher):
    """Everything a home rule wants from another region passes the forwarder first."""
    home = {r.name: r.pattern for r in extract_rules(template, ALL_ON) if r.pattern}
    fwd = [r.pattern for r in extract_rules(forwarder, {"HomeRegion": "eu-central-1", "EnableCloudTrailForward": "true"})]
    for name in all_fixture_names():
        e = ev(name)
        if e["source"] == "ami-lifecycle":
            continue  # reports are published in the home region
        wanted = [n for n, p in home.items() if matcher.matches(p, e)]
        if wanted:
            assert any(matcher.matches(p, e) for p in fwd), f"{name} ({wanted}) would not be forwarded"


def test_forwarder_is_empty_in_home_region(forwarder):
    assert extract_rules(forwarder, {"HomeRegion": "us-east-1"}) == []


# ----------------------------------------------------------------------------
# Parameters and the configuration contract
# ----------------------------------------------------------------------------

ENV_CONTRACT = {
    "AMI_LIFECYCLE_NAME": "DeploymentName", "AMI_LIFECYCLE_REGIONS": "ManagedRegions",
    "REPLICA_REGIONS": "ReplicaRegions", "REPLICA_KMS_KEYS": "ReplicaKmsKeys", "RETAIN": "Retain",
    "SHARE_ALLOWED": "ShareAllowed", "SHARE_GROUPS": "ShareGroups", "ALLOW_PUBLIC": "AllowPublic",
    "SHARE_REPLICAS": "ShareReplicas", "DRY_RUN": "DryRun", "REBOOT_CONCURRENCY": "RebootConcurrency",
    "COPY_INSTANCE_TAGS": "CopyInstanceTags", "KEEP_IF_LAUNCHED_WITHIN": "KeepIfLaunchedWithin",
    "CLEANUP_SHARED": "CleanupShared", "DEPRECATION_GRACE": "DeprecationGrace", "DISABLE_GRACE": "DisableGrace",
    "DELETE_ORPHANS": "DeleteOrphans", "PRICE_PER_GIB_MONTH": "SnapshotPricePerGibMonth",
    "ADOPT_FROM": "AdoptFrom", "RETAIN_BY_REGION": "RetainByRegion",
    "COPY_COMPLETION_MINUTES": "CopyCompletionMinutes",
    # many accounts (i18): every function, publish included, acts on the selected accounts
    "AMI_LIFECYCLE_ACCOUNTS": "Accounts", "SPOKE_EXTERNAL_ID": "SpokeExternalId",
}
# create-image's own variables (reboot authority), each from a parameter.
CREATE_IMAGE_ENV = {"REBOOT_MIN_INTERVAL": "RebootMinInterval", "SLOT_WINDOW": "DirectSlotWindow",
                    "CATCH_UP_WINDOW": "CatchUpWindow", "STALE_GRACE": "StaleGrace",
                    "WAVE_MAX_WAIT": "WaveMaxWait"}
# create-image's quiesce settings (i17 contract); QuiesceFallback is AllowedValues, the others patterns.
QUIESCE_ENV = {"QUIESCE_TIMEOUT": "QuiesceTimeout", "QUIESCE_MAX_FREEZE": "QuiesceMaxFreeze",
               "QUIESCE_FALLBACK": "QuiesceFallback", "QUIESCE_CONCURRENCY": "QuiesceConcurrency"}
# publish's own variables; cleanup reads PUBLISHED_KEEP too (it keeps published history).
PUBLISH_ENV = {"PUBLISH_CONSISTENCY": "PublishConsistency", "PUBLISHED_KEEP": "PublishedKeep"}
CLEANUP_ENV = {"PUBLISHED_KEEP": "PublishedKeep"}
# The fan-out's variables (i18 fan-out contract) of the three fanned-out functions: the
# function's OWN work queue and the run ledger, "" without Accounts (no fan-out), and
# WORK_MAX_RECEIVES equal to the queue's maxReceiveCount. share does not fan out (one run at
# a time for its grant record) and publish neither: neither has these variables.
FANNED_OUT = {"CreateImageFunction": "CreateImageWorkQueue", "ReplicateFunction": "ReplicateWorkQueue",
              "CleanupFunction": "CleanupWorkQueue"}


def fan_out_env(queue: str) -> dict[str, Any]:
    return {"WORK_QUEUE_URL": {"Fn::If": ["HasAccounts", {"Ref": queue}, ""]},
            "RUN_LEDGER_TABLE": {"Fn::If": ["HasAccounts", {"Ref": "RunsTable"}, ""]},
            "WORK_MAX_RECEIVES": "3"}


def test_environment_contract(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert set(env) == set(ENV_CONTRACT) | {"SCHEDULES", "REPORT_EVENT_BUS", "SEAL_KEY"}
    assert env["SEAL_KEY"] == {"Fn::GetAtt": ["SealKey", "Arn"]}, "every function gets the seal key's ARN"
    r = Resolver(template)
    resolved = r.resolve(env)
    for var, param in ENV_CONTRACT.items():
        p = template["Parameters"][param]
        assert "Description" in p and "Default" in p, param
        assert "AllowedPattern" in p or "AllowedValues" in p, param
        if var != "AMI_LIFECYCLE_REGIONS":
            assert env[var] == {"Ref": param}, var
    # Empty ManagedRegions means "the stack's region": the function gets it explicitly.
    assert resolved["AMI_LIFECYCLE_REGIONS"] == "us-east-1"
    assert Resolver(template, {"ManagedRegions": "eu-west-1,us-east-1"}).resolve(env)["AMI_LIFECYCLE_REGIONS"] == "eu-west-1,us-east-1"
    assert resolved["SCHEDULES"] == "daily,weekly" and resolved["REPORT_EVENT_BUS"] == "default"
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == {"CreateImageFunction", "ReplicateFunction", "ShareFunction", "CleanupFunction",
                              "PublishFunction"}
    create_env = functions["CreateImageFunction"]["Properties"]["Environment"]["Variables"]
    assert create_env == {
        "CONTINUATION_QUEUE_URL": {"Ref": "ContinuationQueue"},
        # the schedule rules' own expressions, for the reconcile (missed slots, stale)
        "SCHEDULE_EXPRESSIONS": {"Fn::Sub": "daily=${DailySchedule};weekly=${WeeklySchedule}"},
        # the shipped Linux quiesce document, by the Name the template gives it
        "QUIESCE_LINUX_DOCUMENT": {"Fn::Sub": "${DeploymentName}-quiesce-linux"},
        **{var: {"Ref": param} for var, param in {**CREATE_IMAGE_ENV, **QUIESCE_ENV}.items()},
        **fan_out_env("CreateImageWorkQueue")}
    for name in ("ami-lifecycle", "prod2"):
        rn = Resolver(template, {"DeploymentName": name})
        assert rn.resolve(create_env["QUIESCE_LINUX_DOCUMENT"]) == \
            rn.resolve(template["Resources"]["QuiesceLinuxDocument"]["Properties"]["Name"]) == f"{name}-quiesce-linux"
    # the contract's defaults and ranges (i17)
    assert r.resolve({var: create_env[var] for var in QUIESCE_ENV}) == {
        "QUIESCE_TIMEOUT": "60", "QUIESCE_MAX_FREEZE": "120", "QUIESCE_FALLBACK": "skip", "QUIESCE_CONCURRENCY": "5"}
    assert template["Parameters"]["QuiesceFallback"]["AllowedValues"] == ["skip", "reboot", "no-reboot"]
    assert sorted(resolved["SCHEDULES"].split(",")) == sorted(
        pair.split("=")[0] for pair in create_env["SCHEDULE_EXPRESSIONS"]["Fn::Sub"].split(";")), \
        "every schedule has its expression"
    for param in [*CREATE_IMAGE_ENV.values(), *PUBLISH_ENV.values()]:
        p = template["Parameters"][param]
        assert "AllowedPattern" in p and "Description" in p, param
    assert [template["Parameters"][p]["Default"] for p in CREATE_IMAGE_ENV.values()] == ["60", "60", "", "60", "180"]
    # share has no variables of its own (no fan-out: the check below that it has no Environment)
    own_env = {"PublishFunction": PUBLISH_ENV, "CleanupFunction": CLEANUP_ENV, "ReplicateFunction": {}}
    for logical_id, own in own_env.items():
        fan_out = fan_out_env(FANNED_OUT[logical_id]) if logical_id in FANNED_OUT else {}
        assert functions[logical_id]["Properties"]["Environment"]["Variables"] == {
            **{var: {"Ref": param} for var, param in own.items()}, **fan_out}, logical_id
        assert not (set(own) | set(fan_out)) & set(env), \
            f"{logical_id}: a function variable must not shadow the common contract"
    # without Accounts: no fan-out (the Rust core treats "" as unset); with it, each its own queue
    for logical_id, queue in FANNED_OUT.items():
        variables = functions[logical_id]["Properties"]["Environment"]["Variables"]
        assert r.resolve(variables)["WORK_QUEUE_URL"] == "" and r.resolve(variables)["RUN_LEDGER_TABLE"] == ""
        with_accounts = Resolver(template, {"Accounts": "org"}).resolve(variables)
        assert with_accounts["WORK_QUEUE_URL"] == {"Ref": queue}, logical_id
        assert with_accounts["RUN_LEDGER_TABLE"] == {"Ref": "RunsTable"}, logical_id
    # the contract's defaults (i16): the three non-crash consistencies, keep 3
    assert r.resolve(functions["PublishFunction"]["Properties"]["Environment"]["Variables"]) == {
        "PUBLISH_CONSISTENCY": "rebooted,stopped,application-consistent", "PUBLISHED_KEEP": "3"}
    for logical_id, fn in functions.items():
        binary = fn["Metadata"]["BuildProperties"]["Binary"]
        assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
        assert fn["Properties"]["CodeUri"] == f"functions/{binary}"
        assert (ROOT / "functions" / binary / "Cargo.toml").exists(), binary
        assert r.resolve(fn["Properties"]["FunctionName"]) == f"{DEPLOYMENT}-{binary}"
        assert fn["Properties"]["LoggingConfig"]["LogFormat"] == "JSON"
        if logical_id not in ("CreateImageFunction", *own_env):
            assert "Environment" not in fn["Properties"], logical_id


def _java_like(pattern: str) -> str:
    return pattern  # the patterns use only syntax Java and Python agree on


@pytest.mark.parametrize("name", sorted(load_template(TEMPLATE)["Parameters"]))
def test_parameter_defaults_are_valid(template, name):
    p = template["Parameters"][name]
    assert p.get("Description"), name
    default = str(p.get("Default", ""))
    if "AllowedPattern" in p:
        assert re.fullmatch(_java_like(p["AllowedPattern"]), default), f"{name} default {default!r}"
    if "AllowedValues" in p:
        assert default in [str(v) for v in p["AllowedValues"]], name


GOOD_BAD = {
    "DeploymentName": (["ami-lifecycle", "prod2", "a"], ["Prod", "-x", "a" * 33, "a_b"]),
    "ManagedRegions": (["", "us-east-1", "us-east-1,eu-west-1", "us-gov-west-1"], ["us-east-1, eu-west-1", "moon", "us-east-1,"]),
    "ReplicaKmsKeys": (["", "us-west-2=alias/replicas", "us-west-2=alias/r,eu-west-1=arn:aws:kms:eu-west-1:111122223333:key/abc"],
                       ["alias/x", "us-west-2="]),
    "Retain": (["count=7", "days=30", "count=7,days=30", "daily=7,weekly=4,monthly=12", "daily=7,weekly=4,monthly=12,yearly=2"],
               ["", "count=0", "count", "hourly=3", "count=7;days=3"]),
    # RETAIN_BY_REGION: region=rule;… (each rule as RETAIN); the regions are checked at start-up
    "RetainByRegion": (["", "eu-west-1=count=3", "eu-west-1=count=3;us-west-2=days=90",
                        "us-gov-west-1=daily=7,weekly=4,monthly=12"],
                       ["eu-west-1", "count=3", "eu-west-1=count=0", "eu-west-1=count=3,us-west-2=days=90",
                        "eu-west-1=hourly=3", "eu-west-1 = count=3"]),
    # COPY_COMPLETION_MINUTES: CopyImage's 15-minute steps, 15 to 2880 (the Rust range)
    "CopyCompletionMinutes": (["", "15", "30", "120", "1440", "2865", "2880"],
                              ["0", "10", "20", "2895", "3000", "-15", "1h", "015"]),
    # SHARE_ALLOWED: AllowList::parse (shared/src/share_target.rs) - ids, organization/OU ARNs, org (exactly)
    "ShareAllowed": (["", "111122223333", "111122223333,arn:aws:organizations::111122223333:organization/o-abcdefghij",
                      "arn:aws:organizations::111122223333:ou/o-abcdefghij/ou-ab12-cdefghij", "org", "org,111122223333",
                      "111122223333,org,arn:aws:organizations::111122223333:ou/o-abcdefghij/ou-ab12-cdefghij"],
                     ["1111", "all", "111122223333 444455556666", "ORG", "org,", "organization", "o-abcdefghij",
                      "111122223333,org1"]),
    "ShareGroups": (["", "prod=111122223333 444455556666;dev=777788889999"], ["prod", "prod=all", "=111122223333"]),
    "RebootConcurrency": (["1", "10", "100"], ["0", "101", "x"]),
    "KeepIfLaunchedWithin": (["0", "14", "3650"], ["3651", "-1", ""]),
    "DisableGrace": (["0", "7", "999", "3650"], ["3651", "-1", "", "7d"]),
    "CopyInstanceTags": (["", "Team", "Team,cost-center"], ["aws:cloudformation:stack-name", "Team,aws:x"]),
    "SnapshotPricePerGibMonth": (["0.05", "1", "0.0125"], ["", "-1", "1e3"]),
    "AdoptFrom": (["", "111122223333,444455556666"], ["11112222333", "x"]),
    "AlarmEmail": (["", "ops@example.com"], ["ops", "a@b"]),
    # AMI_LIFECYCLE_ACCOUNTS (i18): ids, ou:ou-..., org; the Rust parser's OU id shape
    "Accounts": (["", "111122223333", "org", "ou:ou-ab12-cdefghij", "111122223333,ou:ou-ab12-cdefghij,org"],
                 ["1111", "ou-ab12-cdefghij", "ou:ou-ab12-cd", "111122223333, 444455556666", "all", "111122223333,"]),
    # SPOKE_EXTERNAL_ID: empty, or 16-128 characters STS accepts in an external id
    "SpokeExternalId": (["", "0123456789abcdef", "a" * 128, "ab+=,.@:/_-01234"],
                        ["0123456789abcde", "a" * 129, "0123456789abcdef 01", "0123456789abcdef!"]),
    "DailySchedule": (["cron(0 3 * * ? *)", "rate(12 hours)"], ["0 3 * * *", ""]),
    # the Rust parser's ranges: REBOOT_MIN_INTERVAL 0-10080, SLOT_WINDOW 1-1440 (minutes)
    "RebootMinInterval": (["0", "60", "999", "9999", "10000", "10079", "10080"], ["", "-1", "10081", "10100", "20000", "1.5", "1h"]),
    "DirectSlotWindow": (["1", "60", "999", "1000", "1399", "1439", "1440"], ["", "0", "1441", "1500", "2000", "-5", "60m"]),
    # CATCH_UP_WINDOW: empty (half the period) or minutes from 1; STALE_GRACE minutes from 0
    "CatchUpWindow": (["", "1", "90", "720", "527040"], ["0", "-1", "1h", "12.5", "1234567"]),
    "StaleGrace": (["0", "60", "1440"], ["", "-1", "1h", "1234567"]),
    # WAVE_MAX_WAIT: the Rust range 1-1440 minutes
    "WaveMaxWait": (["1", "180", "999", "1399", "1439", "1440"], ["", "0", "1441", "1500", "3h", "-1"]),
    "CreateImageReconcileSchedule": (["rate(1 hour)", "cron(15 * * * ? *)"], ["hourly", ""]),
    # quiesce (i17 contract): QUIESCE_TIMEOUT 5-600 s, QUIESCE_MAX_FREEZE 10-900 s, QUIESCE_CONCURRENCY 1-50
    "QuiesceTimeout": (["5", "9", "10", "60", "99", "100", "599", "600"], ["", "0", "4", "05", "601", "700", "1000", "60s", "-5"]),
    "QuiesceMaxFreeze": (["10", "99", "100", "120", "899", "900"], ["", "0", "9", "010", "901", "1000", "2m", "-10"]),
    "QuiesceConcurrency": (["1", "5", "9", "10", "49", "50"], ["", "0", "05", "51", "100", "five", "-1"]),
    # PUBLISH_CONSISTENCY: one or more of the four consistencies, comma-separated (i16 contract)
    "PublishConsistency": (["rebooted,stopped,application-consistent", "rebooted", "crash-consistent",
                            "rebooted,stopped,application-consistent,crash-consistent", "stopped,rebooted"],
                           ["", "rebooted, stopped", "Rebooted", "crash", "rebooted,", ",rebooted", "rebooted;stopped",
                            "application_consistent", "all"]),
    # PUBLISHED_KEEP: 0-100 (0 = only the current value is kept)
    "PublishedKeep": (["0", "3", "10", "99", "100"], ["", "-1", "101", "1000", "03", "3.0", "three"]),
    "PublishReconcileSchedule": (["rate(1 hour)", "rate(15 minutes)", "cron(0 * * * ? *)"], ["hourly", "", "1h"]),
    "OperatorRoleArn": (["", "arn:aws:iam::111122223333:role/ami-lifecycle-operator",
                         "arn:aws-us-gov:iam::111122223333:role/ops/ami-lifecycle-operator"],
                        ["ami-lifecycle-operator", "arn:aws:iam::111122223333:user/ops",
                         "arn:aws:sts::111122223333:assumed-role/ops/session", "arn:aws:iam::1111:role/x",
                         "arn:aws:iam::111122223333:role/"]),
    # Organizations ids: o- and 10-32 lowercase letters or digits (issue 18; not used yet)
    "OrganizationId": (["", "o-a1b2c3d4e5", "o-exampleorgid1234567890abcdefghij"],
                       ["o-", "o-short", "o-A1B2C3D4E5", "o-a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q", "a1b2c3d4e5",
                        "arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5", " o-a1b2c3d4e5"]),
}


def test_copy_completion_minutes_pattern_is_the_rust_range(template):
    pattern = template["Parameters"]["CopyCompletionMinutes"]["AllowedPattern"]
    accepted = [n for n in range(0, 3001) if re.fullmatch(pattern, str(n))]
    assert accepted == list(range(15, 2881, 15))


@pytest.mark.parametrize("name, low, high", [("QuiesceTimeout", 5, 600), ("QuiesceMaxFreeze", 10, 900),
                                             ("QuiesceConcurrency", 1, 50)])
def test_quiesce_patterns_are_the_contract_ranges(template, name, low, high):
    pattern = template["Parameters"][name]["AllowedPattern"]
    assert [n for n in range(0, 2000) if re.fullmatch(pattern, str(n))] == list(range(low, high + 1))


@pytest.mark.parametrize("name", sorted(GOOD_BAD))
def test_parameter_patterns(template, name):
    pattern = template["Parameters"][name]["AllowedPattern"]
    good, bad = GOOD_BAD[name]
    for v in good:
        assert re.fullmatch(pattern, v), f"{name} should accept {v!r}"
    for v in bad:
        assert not re.fullmatch(pattern, v), f"{name} should reject {v!r}"


# ----------------------------------------------------------------------------
# The seal key and the functions' concurrency
# ----------------------------------------------------------------------------

def test_seal_key_is_an_hmac_key_with_its_alias(template):
    key = template["Resources"]["SealKey"]
    assert key["Type"] == "AWS::KMS::Key"
    props = key["Properties"]
    assert (props["KeySpec"], props["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    # KMS refuses automatic rotation of HMAC keys: setting it would fail the deploy.
    assert "EnableKeyRotation" not in props
    aliases = [v for v in template["Resources"].values() if v["Type"] == "AWS::KMS::Alias"]
    assert [a["Properties"]["TargetKeyId"] for a in aliases] == [{"Ref": "SealKey"}]
    for name in ("ami-lifecycle", "prod2"):
        assert Resolver(template, {"DeploymentName": name}).resolve(aliases[0]["Properties"]["AliasName"]) == f"alias/{name}-seal"
    assert template["Outputs"]["SealKeyArn"]["Value"] == {"Fn::GetAtt": ["SealKey", "Arn"]}


def test_seal_policies_attach_to_the_right_roles(template):
    """Making seals: create-image, replicate, share; checking only: cleanup, publish. Each function
    waits for its policy (DependsOn), so no run starts before it may use the key."""
    res = template["Resources"]
    attached = {}
    for logical_id, v in res.items():
        # unconditional only: the many-accounts policies (HasAccounts) are test_many_accounts.py's,
        # share's SHARE_ALLOWED=org policy (ShareAllowsOrg) test_share_allowed_org.py's
        if v["Type"] == "AWS::IAM::Policy" and "Condition" not in v:
            actions = sorted({a for s in v["Properties"]["PolicyDocument"]["Statement"] for a in
                              (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])})
            for role in v["Properties"]["Roles"]:
                attached[role["Ref"]] = (logical_id, actions)
    assert attached == {
        "CreateImageFunctionRole": ("SealMakersPolicy", ["kms:GenerateMac", "kms:VerifyMac"]),
        "ReplicateFunctionRole": ("SealMakersPolicy", ["kms:GenerateMac", "kms:VerifyMac"]),
        "ShareFunctionRole": ("SealMakersPolicy", ["kms:GenerateMac", "kms:VerifyMac"]),
        "CleanupFunctionRole": ("SealCheckerPolicy", ["kms:VerifyMac"]),
        "PublishFunctionRole": ("SealCheckerPolicy", ["kms:VerifyMac"]),
    }
    for role, (policy, _) in attached.items():
        assert res[role.removesuffix("Role")]["DependsOn"] == policy, role


def test_share_and_cleanup_run_one_at_a_time(template):
    functions = {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    reserved = {k: p.get("ReservedConcurrentExecutions") for k, p in functions.items()}
    # publish: PutParameter has no compare-and-set, so read-decide-write is serialized.
    assert Resolver(template).resolve(reserved) == {
        "CreateImageFunction": None, "ReplicateFunction": None, "ShareFunction": 1, "CleanupFunction": 1,
        "PublishFunction": 1}
    # With Accounts (the fan-out), cleanup's work items run up to FanOutConcurrency at once: a
    # reservation below the SQS mapping's MaximumConcurrency would throttle items into their DLQ
    # (Lambda: reserved concurrency >= the mappings' maximum concurrency). share does not fan
    # out: its grant record is safe with one run at a time only, so it keeps 1 and runs the
    # accounts one after the other in one invocation.
    assert Resolver(template, {"Accounts": "org"}).resolve(reserved) == {
        "CreateImageFunction": None, "ReplicateFunction": None, "ShareFunction": 1, "PublishFunction": 1}
    assert functions["ShareFunction"]["ReservedConcurrentExecutions"] == 1, "unconditionally, not under Fn::If"


def test_every_parameter_is_documented(template):
    """infra/README.md's parameter table has one row per stack parameter, with its default."""
    readme = (ROOT / "infra" / "README.md").read_text()
    table = readme[readme.index("### Parameters"):readme.index("### What the stack creates")]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| ([A-Za-z]+) \|[^|]*\| ([^|]+) \|", table, re.M)}
    rows.pop("parameter", None)  # the header
    assert set(rows) == set(template["Parameters"])
    for name, default in rows.items():
        want = str(template["Parameters"][name].get("Default", ""))
        assert default.strip() == (f"`{want}`" if want else '""'), name
