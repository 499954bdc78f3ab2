"""Many accounts (issue 18, the fan-out): what template.yaml adds when `Accounts` is set, and the
forwarder deployed in spoke accounts.

* Each fanned-out function (create-image, replicate, cleanup) has its own work queue and DLQ,
  an event source mapping and a DLQ alarm; the queue's `maxReceiveCount` is the function's
  `WORK_MAX_RECEIVES`, its visibility timeout 6 x the function's timeout.
* share does not fan out, Accounts set or not: no work queue, mapping, ledger or fan-out
  variables, and reserved concurrency 1 (its grant record is safe with one run at a time; it
  runs the accounts one after the other in one invocation).
* Each function's statements, evaluated with `policy_eval.decide` for sample requests: its own
  queue only (send, and what the event source mapping reads), the run ledger's five item calls
  only (share and publish: no queue, no ledger), `sts:AssumeRole` on its OWN spoke role only (in
  the organization when `OrganizationId` is set: `aws:ResourceOrgID`), the Organizations
  listing; none of it without `Accounts`. End to end with the spoke roles' trust
  (infra/spoke-role.yaml): a hub function gets into its own spoke role and not into another
  function's. Deliberately broken variants must get a decision wrong.
* The work queues admit only their own function's role as a sender.
* The hub bus policy admits `events:PutEvents` from the organization only (`aws:PrincipalOrgID`).
* Drift: every SQS / DynamoDB call of the fan-out's adapters (shared/src/aws/work_queue.rs,
  ledger.rs) is allowed to each fanned-out function; a new call fails until it is added.
* infra/forwarder.yaml with `HubAccountId`: a spoke account forwards from every region, the home
  region included, to the hub's bus, and its role may put events on that bus only; empty
  `HubAccountId` keeps the single-account behaviour.

Run: make pattern-test  (or .venv/tools/bin/pytest infra/tests/test_many_accounts.py)
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from policy_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, decide, decide_assume_role
from test_event_patterns import Resolver, extract_rules, load_template
from test_policies import ACCOUNT, RUNS_TABLE, SPOKE_NAMES, SUITE, WORK_QUEUES, concrete, role_identity

ROOT = Path(__file__).resolve().parents[2]
ORG, OTHER_ORG = "o-abcdefghij", "o-zyxwvutsrq"
SPOKE_ACCOUNT, HUB = "444455556666", ACCOUNT
EXTERNAL_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
MANY = {"Accounts": "111122223333,ou:ou-ab12-cdefghij", "OrganizationId": ORG}
FANNED_OUT = sorted(WORK_QUEUES)  # create-image, replicate, cleanup (not share, not publish)
FAN_OUT_KINDS = ("WorkQueue", "WorkDeadLetterQueue", "WorkQueuePolicy", "WorkMapping", "WorkDeadLetterAlarm")
ADMIN = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def spoke() -> dict[str, Any]:
    return load_template(ROOT / "infra" / "spoke-role.yaml")


def prefix(fn: str) -> str:
    return fn.removesuffix("Function")


def spoke_role(fn: str, deployment: str = "ami-lifecycle", account: str = SPOKE_ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/ami-lifecycle/{deployment}-spoke-{SPOKE_NAMES[fn]}"


# ----------------------------------------------------------------------------
# The resources: only with Accounts, one set per fanned-out function
# ----------------------------------------------------------------------------

def created(template: dict[str, Any], overrides: dict[str, str] | None = None) -> set[str]:
    r = Resolver(template, overrides)
    return {k for k, v in template["Resources"].items() if "Condition" not in v or r.condition(v["Condition"])}


def test_fan_out_exists_only_with_accounts(template):
    per_function = {f"{prefix(fn)}{kind}" for fn in FANNED_OUT for kind in (*FAN_OUT_KINDS, "ManyAccountsPolicy")}
    many = per_function | {"RunsTable", "ShareManyAccountsPolicy", "PublishManyAccountsPolicy"}
    assert many <= set(template["Resources"])
    assert not created(template) & many, "without Accounts the stack is as before"
    assert created(template, {"Accounts": "org"}) - created(template) == many  # no bus policy without OrganizationId
    assert created(template, MANY) - created(template) == many | {"OrganizationEventsBusPolicy"}
    assert "OrganizationEventsBusPolicy" not in created(template, {"OrganizationId": ORG}), "no accounts, no bus policy"


@pytest.mark.parametrize("fn", FANNED_OUT)
def test_work_queue_mapping_and_alarm(template, fn):
    res, p = template["Resources"], prefix(fn)
    function = res[fn]["Properties"]
    queue = res[f"{p}WorkQueue"]["Properties"]
    dlq = res[f"{p}WorkDeadLetterQueue"]["Properties"]
    # AWS: the queue's visibility timeout at least six times the function's timeout
    assert queue["VisibilityTimeout"] == 6 * function["Timeout"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [f"{p}WorkDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": 3}
    # the function stops returning an item once it has been received WORK_MAX_RECEIVES times
    assert int(function["Environment"]["Variables"]["WORK_MAX_RECEIVES"]) == queue["RedrivePolicy"]["maxReceiveCount"]
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 1209600 and queue["MessageRetentionPeriod"] <= dlq["MessageRetentionPeriod"]
    r = Resolver(template)
    assert r.resolve(queue["QueueName"]) == f"ami-lifecycle-{SPOKE_NAMES[fn]}-work"
    mapping = res[f"{p}WorkMapping"]
    assert mapping["DependsOn"] == f"{p}ManyAccountsPolicy", "Lambda checks the role may read the queue"
    assert mapping["Properties"] == {
        "EventSourceArn": {"Fn::GetAtt": [f"{p}WorkQueue", "Arn"]}, "FunctionName": {"Ref": fn},
        "BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": {"Ref": "FanOutConcurrency"}}, "Enabled": True}
    alarm = res[f"{p}WorkDeadLetterAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{p}WorkDeadLetterQueue", "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "ReportsTopic"}]
    for kind in ("WorkQueue", "WorkDeadLetterQueue", "WorkQueuePolicy", "WorkMapping", "ManyAccountsPolicy",
                 "WorkDeadLetterAlarm"):
        assert res[f"{p}{kind}"]["Condition"] == "HasAccounts", kind


@pytest.mark.parametrize("overrides", [{}, {"Accounts": "org"}, MANY], ids=["one account", "org", "accounts+org id"])
def test_share_does_not_fan_out_and_runs_one_at_a_time(template, overrides):
    """share's grant record (the share-granted tags on the image) is only safe with one share run
    at a time: Accounts set or not, share has no work queue, mapping, DLQ, alarm or ledger
    variables, and its reserved concurrency stays 1 (it runs the accounts one after the other in
    one invocation). With Accounts its many-accounts policy is the spoke role and the
    Organizations listing only."""
    res, r = template["Resources"], Resolver(template, overrides)
    made = created(template, overrides)
    assert not {f"Share{kind}" for kind in FAN_OUT_KINDS} & set(res), "share has no fan-out resources"
    mappings = [k for k in made if res[k]["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mappings, "the fan-out's (with Accounts) or the continuation queue's mappings exist"
    assert [k for k in mappings if res[k]["Properties"]["FunctionName"] == {"Ref": "ShareFunction"}] == []
    queues = {r.resolve(res[k]["Properties"]["QueueName"]) for k in made if res[k]["Type"] == "AWS::SQS::Queue"}
    assert not {q for q in queues if q.startswith("ami-lifecycle-share")}, queues
    share = r.resolve(res["ShareFunction"]["Properties"])
    assert share.get("ReservedConcurrentExecutions") == 1, "one share run at a time (its grant record)"
    assert not {"WORK_QUEUE_URL", "RUN_LEDGER_TABLE", "WORK_MAX_RECEIVES"} & set(share.get("Environment", {}).get("Variables", {}))
    if "Accounts" not in overrides:
        assert "ShareManyAccountsPolicy" not in made
        return
    assert "ShareManyAccountsPolicy" in made
    doc = concrete(r.resolve(res["ShareManyAccountsPolicy"]["Properties"]["PolicyDocument"]))
    actions = {a for st in doc["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    assert actions == {"sts:AssumeRole", *ORG_CALLS}, "no SQS or DynamoDB statement: share has no queue or ledger"
    policy = identity(template, "ShareFunction", overrides)
    for a in ["sqs:SendMessage", *WORKER_CALLS]:
        for q in [own_queue_name("ShareFunction"), *WORK_QUEUES.values()]:
            assert decide(ask("ShareFunction", a, q), identity=[policy]) == IMPLICIT_DENY, (a, q)
    for a in LEDGER_CALLS:
        assert decide(ask("ShareFunction", a, RUNS_TABLE), identity=[policy]) == IMPLICIT_DENY, a


def test_fan_out_concurrency_is_what_the_mapping_accepts(template):
    p = template["Parameters"]["FanOutConcurrency"]
    # ScalingConfig.MaximumConcurrency: 2 to 1000 (Lambda API reference)
    assert (p["Type"], p["Default"], p["MinValue"], p["MaxValue"]) == ("Number", 10, 2, 1000)
    ext = template["Parameters"]["SpokeExternalId"]
    assert ext["NoEcho"] is True and ext["Default"] == ""


def test_runs_table(template):
    t = template["Resources"]["RunsTable"]
    assert t["Condition"] == "HasAccounts"
    props = t["Properties"]
    assert Resolver(template).resolve(props["TableName"]) == "ami-lifecycle-runs"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "run", "KeyType": "HASH"}, {"AttributeName": "item", "KeyType": "RANGE"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "run", "AttributeType": "S"},
                                             {"AttributeName": "item", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


# ----------------------------------------------------------------------------
# Each function's statements
# ----------------------------------------------------------------------------

def identity(template: dict[str, Any], fn: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    return role_identity(template, Resolver(template, MANY if overrides is None else overrides), fn)


def ask(fn: str, action: str, resource: str, **ctx: Any) -> Request:
    return Request(action, resource, SUITE[fn], {"aws:PrincipalArn": SUITE[fn], **ctx})


def in_org(org: str = ORG) -> dict[str, str]:
    return {"aws:ResourceOrgID": org}


LEDGER_CALLS = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query",
                "dynamodb:ConditionCheckItem"]
WORKER_CALLS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
ORG_CALLS = ["organizations:ListAccounts", "organizations:ListAccountsForParent",
             "organizations:ListOrganizationalUnitsForParent", "organizations:DescribeOrganization"]


def own_queue_name(fn: str) -> str:
    """The ARN a work queue of `fn` would have (``<DeploymentName>-<function>-work``)."""
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:ami-lifecycle-{SPOKE_NAMES[fn]}-work"


def scenarios(fn: str) -> list[tuple[str, Request, str]]:
    own_queue = WORK_QUEUES.get(fn)
    others = [q for f, q in WORK_QUEUES.items() if f != fn]
    out: list[tuple[str, Request, str]] = [
        ("assumes its own spoke role in the organization", ask(fn, "sts:AssumeRole", spoke_role(fn), **in_org()), ALLOW),
        ("in another spoke account of the organization",
         ask(fn, "sts:AssumeRole", spoke_role(fn, account="777788889999"), **in_org()), ALLOW),
        ("its own spoke role name in another organization", ask(fn, "sts:AssumeRole", spoke_role(fn), **in_org(OTHER_ORG)),
         IMPLICIT_DENY),
        ("a role whose organization is unknown", ask(fn, "sts:AssumeRole", spoke_role(fn)), IMPLICIT_DENY),
        ("a role named like its spoke role",
         ask(fn, "sts:AssumeRole", spoke_role(fn) + "-x", **in_org()), IMPLICIT_DENY),
        ("its spoke role's name outside /ami-lifecycle/",
         ask(fn, "sts:AssumeRole", spoke_role(fn).replace("/ami-lifecycle/", "/"), **in_org()), IMPLICIT_DENY),
        ("another deployment's spoke role", ask(fn, "sts:AssumeRole", spoke_role(fn, "prod2"), **in_org()), IMPLICIT_DENY),
        ("an administrator role", ask(fn, "sts:AssumeRole", f"arn:aws:iam::{SPOKE_ACCOUNT}:role/admin", **in_org()),
         IMPLICIT_DENY),
        *[(f"another function's spoke role ({SPOKE_NAMES[o]})", ask(fn, "sts:AssumeRole", spoke_role(o), **in_org()),
           IMPLICIT_DENY) for o in SPOKE_NAMES if o != fn],
        *[(f"lists the organization ({a})", ask(fn, a, "*"), ALLOW) for a in ORG_CALLS],
        ("creates an account", ask(fn, "organizations:CreateAccount", "*"), IMPLICIT_DENY),
        ("moves an account", ask(fn, "organizations:MoveAccount", "*"), IMPLICIT_DENY),
        ("tags its spoke session", ask(fn, "sts:TagSession", spoke_role(fn), **in_org()), IMPLICIT_DENY),
        ("deletes a ledger row", ask(fn, "dynamodb:DeleteItem", RUNS_TABLE), IMPLICIT_DENY),
        ("scans the ledger", ask(fn, "dynamodb:Scan", RUNS_TABLE), IMPLICIT_DENY),
        ("deletes the ledger", ask(fn, "dynamodb:DeleteTable", RUNS_TABLE), IMPLICIT_DENY),
        ("writes another table", ask(fn, "dynamodb:PutItem", RUNS_TABLE.replace("-runs", "-other")), IMPLICIT_DENY),
        *[(f"{a} on another function's queue", ask(fn, a, q), IMPLICIT_DENY)
          for q in others for a in ["sqs:SendMessage", *WORKER_CALLS]],
    ]
    if own_queue is None:  # share, publish: no queue, no ledger
        out += [(f"{a} on the ledger ({SPOKE_NAMES[fn]} has none)", ask(fn, a, RUNS_TABLE), IMPLICIT_DENY)
                for a in LEDGER_CALLS]
        out += [(f"{a} on a queue named like a work queue of its own", ask(fn, a, own_queue_name(fn)), IMPLICIT_DENY)
                for a in ["sqs:SendMessage", *WORKER_CALLS]]
    else:
        out += [
            ("sends work items to its own queue", ask(fn, "sqs:SendMessage", own_queue), ALLOW),
            *[(f"its mapping reads its own queue ({a})", ask(fn, a, own_queue), ALLOW) for a in WORKER_CALLS],
            *[(f"the ledger ({a})", ask(fn, a, RUNS_TABLE), ALLOW) for a in LEDGER_CALLS],
            ("purges its own queue", ask(fn, "sqs:PurgeQueue", own_queue), IMPLICIT_DENY),
            ("changes its own queue's attributes", ask(fn, "sqs:SetQueueAttributes", own_queue), IMPLICIT_DENY),
        ]
    return out


def wrong(fn: str, policy: dict[str, Any]) -> list[str]:
    return [f"{label}: {decide(req, identity=[policy])} != {want}"
            for label, req, want in scenarios(fn) if decide(req, identity=[policy]) != want]


@pytest.mark.parametrize("fn", sorted(SUITE))
def test_each_function_reaches_only_its_own_queue_ledger_and_spoke_role(template, fn):
    assert wrong(fn, identity(template, fn)) == []


@pytest.mark.parametrize("fn", sorted(SUITE))
def test_without_accounts_no_function_reaches_other_accounts(template, fn):
    """The default stack (Accounts empty): no queue, ledger, STS or Organizations permission."""
    for overrides in ({}, {"OrganizationId": ORG}):
        policy = identity(template, fn, overrides)
        for label, req, want in scenarios(fn):
            assert decide(req, identity=[policy]) == IMPLICIT_DENY, (overrides, label)


@pytest.mark.parametrize("fn", sorted(SUITE))
def test_without_organization_id_any_organization(template, fn):
    """OrganizationId empty: the spoke role of the function in any account (the condition is left
    out), still only that role."""
    policy = identity(template, fn, {"Accounts": "org"})
    assert decide(ask(fn, "sts:AssumeRole", spoke_role(fn)), identity=[policy]) == ALLOW
    assert decide(ask(fn, "sts:AssumeRole", spoke_role(fn), **in_org(OTHER_ORG)), identity=[policy]) == ALLOW
    other = "CleanupFunction" if fn != "CleanupFunction" else "ShareFunction"
    assert decide(ask(fn, "sts:AssumeRole", spoke_role(other)), identity=[policy]) == IMPLICIT_DENY


def _statement(p: dict[str, Any], sid: str) -> dict[str, Any]:
    (s,) = [s for s in p["Statement"] if s.get("Sid") == sid]
    return s


def _any_spoke_role(p):
    s = _statement(p, "AssumeSpokeRole")
    s["Resource"] = s["Resource"].rsplit("-spoke-", 1)[0] + "-spoke*"


def _no_org_condition(p):
    _statement(p, "AssumeSpokeRole").pop("Condition")


def _org_as_principal(p):
    _statement(p, "AssumeSpokeRole")["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": ORG}}


def _receive_anywhere(p):
    _statement(p, "ReceiveWork")["Resource"] = "*"


def _send_anywhere(p):
    _statement(p, "SendWork")["Resource"] = "arn:aws:sqs:*:*:*"


def _ledger_may_delete(p):
    _statement(p, "RunLedger")["Action"].append("dynamodb:DeleteItem")


def _any_table(p):
    _statement(p, "RunLedger")["Resource"] = "arn:aws:dynamodb:*:*:table/*"


def _org_may_write(p):
    _statement(p, "ListOrganization")["Action"] = "organizations:*"


BAD = {
    "AssumeRole on every spoke role": _any_spoke_role,
    "AssumeRole without aws:ResourceOrgID": _no_org_condition,
    "the organization checked on the caller, not the role": _org_as_principal,
    "receives from any queue": _receive_anywhere,
    "sends to any queue": _send_anywhere,
    "may delete ledger rows": _ledger_may_delete,
    "any table": _any_table,
    "every Organizations action": _org_may_write,
}


@pytest.mark.parametrize("variant", sorted(BAD))
def test_bad_many_accounts_policy_is_caught(template, variant):
    fn = "CleanupFunction"
    r = Resolver(template, MANY)
    good = concrete(r.resolve(template["Resources"]["CleanupManyAccountsPolicy"]["Properties"]["PolicyDocument"]))
    bad = copy.deepcopy(good)
    BAD[variant](bad)
    assert bad != good, "the mutation changed nothing"
    others = role_identity(template, Resolver(template), fn)  # the function's other statements
    assert wrong(fn, {"Statement": others["Statement"] + good["Statement"]}) == []
    assert wrong(fn, {"Statement": others["Statement"] + bad["Statement"]}), f"{variant}: no scenario notices it"


@pytest.mark.parametrize("fn", sorted(SUITE))
def test_hub_function_gets_into_its_own_spoke_role_only(template, spoke, fn):
    """End to end: the spoke role's trust (any hub function role of the deployment, with the
    external id) AND the hub role's own policy (its own spoke role only) must both allow."""
    hub_identity = identity(template, fn)
    for target in SPOKE_NAMES:
        trust = Resolver(spoke, {"HubAccountId": HUB, "ExternalId": EXTERNAL_ID}).resolve(
            spoke["Resources"][f"{prefix(target)}SpokeRole"]["Properties"]["AssumeRolePolicyDocument"])
        req = Request("sts:AssumeRole", spoke_role(target), SUITE[fn],
                      {"aws:PrincipalArn": SUITE[fn], "sts:ExternalId": EXTERNAL_ID, **in_org()})
        want = ALLOW if target == fn else IMPLICIT_DENY
        assert decide_assume_role(req, trust, [hub_identity]) == want, target


def test_assumed_roles_are_the_spoke_template_s_roles(template, spoke):
    """The ARN each hub function may assume is the spoke template's role for it (path and name)."""
    rs = Resolver(spoke, {"DeploymentName": "prod2", "HubAccountId": HUB, "ExternalId": EXTERNAL_ID})
    for fn, name in SPOKE_NAMES.items():
        props = spoke["Resources"][f"{prefix(fn)}SpokeRole"]["Properties"]
        arn = f"arn:aws:iam::{SPOKE_ACCOUNT}:role{props['Path']}{rs.resolve(props['RoleName'])}"
        policy = identity(template, fn, {**MANY, "DeploymentName": "prod2"})
        req = Request("sts:AssumeRole", arn, SUITE[fn], {"aws:PrincipalArn": SUITE[fn], **in_org()})
        assert decide(req, identity=[policy]) == ALLOW, name


def test_hub_roles_fit_the_inline_policy_quota(template):
    """IAM: a role's inline policies together at most 10,240 characters (whitespace not
    counted) - SAM's Policies and every AWS::IAM::Policy on the role - at long parameter values."""
    longest = {**MANY, "ShareAllowed": "org", "DeploymentName": "a" * 32,  # org: share-allowed-org too "OperatorRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{'o' * 64}",
               "KmsKeyArns": ",".join([f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{'1' * 36}"] * 10)}
    r = Resolver(template, longest)
    for fn in SUITE:
        size = sum(len(json.dumps(concrete(p), separators=(",", ":")))
                   for p in r.resolve(template["Resources"][fn]["Properties"]["Policies"]))
        for v in template["Resources"].values():
            if v["Type"] == "AWS::IAM::Policy" and {"Ref": f"{fn}Role"} in v["Properties"]["Roles"] \
                    and ("Condition" not in v or r.condition(v["Condition"])):
                size += len(json.dumps(concrete(r.resolve(v["Properties"]["PolicyDocument"])), separators=(",", ":")))
        assert size <= 10240, (fn, size)


# ----------------------------------------------------------------------------
# The work queues: only the function's own role sends
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("fn", FANNED_OUT)
def test_work_queue_admits_only_its_function(template, fn):
    r = Resolver(template, MANY)
    policy = concrete(r.resolve(template["Resources"][f"{prefix(fn)}WorkQueuePolicy"]["Properties"]["PolicyDocument"]))
    queue = WORK_QUEUES[fn]
    sqs_everything = {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}

    def send(principal: str, ident: list[dict[str, Any]], **ctx: Any) -> str:
        context = {"aws:PrincipalArn": principal} if principal.startswith("arn:") else {}
        return decide(Request("sqs:SendMessage", queue, principal, {**context, **ctx}), identity=ident, resource=policy)

    assert send(SUITE[fn], [identity(template, fn)]) == ALLOW
    for other in SUITE:
        if other != fn:
            assert send(SUITE[other], [sqs_everything]) == EXPLICIT_DENY, other
    assert send(f"arn:aws:iam::{ACCOUNT}:role/admin", [ADMIN]) == EXPLICIT_DENY
    assert send("events.amazonaws.com", [], **{"aws:SourceArn": f"arn:aws:events:us-east-1:{ACCOUNT}:rule/x"}) == EXPLICIT_DENY
    assert send(f"arn:aws:iam::{SPOKE_ACCOUNT}:role/x", []) == EXPLICIT_DENY


# ----------------------------------------------------------------------------
# The hub bus: PutEvents from the organization only
# ----------------------------------------------------------------------------

HUB_BUS = f"arn:aws:events:us-east-1:{HUB}:event-bus/default"
FORWARDER_ROLE = f"arn:aws:iam::{SPOKE_ACCOUNT}:role/ami-lifecycle-forwarder-ForwarderRole-1A2B3C"


def bus_policy(template: dict[str, Any]) -> dict[str, Any]:
    props = Resolver(template, MANY).resolve(template["Resources"]["OrganizationEventsBusPolicy"]["Properties"])
    assert props["EventBusName"] == "default" and props["StatementId"] == "ami-lifecycle-organization-put-events"
    return {"Statement": [props["Statement"]]}


def put_events(principal: str, org: str | None, resource: str = HUB_BUS) -> Request:
    ctx = {"aws:PrincipalArn": principal}
    if org:
        ctx["aws:PrincipalOrgID"] = org
    return Request("events:PutEvents", resource, principal, ctx)


def bus_wrong(policy: dict[str, Any]) -> list[str]:
    cases = [
        ("a forwarder role of the organization", put_events(FORWARDER_ROLE, ORG), ALLOW),
        ("a role of another organization", put_events(FORWARDER_ROLE, OTHER_ORG), IMPLICIT_DENY),
        ("an account outside any organization", put_events("arn:aws:iam::999988887777:role/x", None), IMPLICIT_DENY),
        ("a rule or bus change from the organization",
         Request("events:PutRule", f"arn:aws:events:us-east-1:{HUB}:rule/x", FORWARDER_ROLE,
                 {"aws:PrincipalOrgID": ORG}), IMPLICIT_DENY),
        ("reading the bus from the organization",
         Request("events:DescribeEventBus", HUB_BUS, FORWARDER_ROLE, {"aws:PrincipalOrgID": ORG}), IMPLICIT_DENY),
    ]
    return [label for label, req, want in cases if decide(req, resource=policy) != want]


def test_hub_bus_admits_only_the_organization(template):
    assert bus_wrong(bus_policy(template)) == []


@pytest.mark.parametrize("variant", ["no condition", "condition on the account", "every events action"])
def test_bad_bus_policy_is_caught(template, variant):
    good = bus_policy(template)
    bad = copy.deepcopy(good)
    s = bad["Statement"][0]
    if variant == "no condition":
        s.pop("Condition")
    elif variant == "condition on the account":
        s["Condition"] = {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}
    else:
        s["Action"] = "events:*"
    assert bad != good
    assert bus_wrong(bad), f"{variant}: no scenario notices the broken bus policy"


# ----------------------------------------------------------------------------
# infra/forwarder.yaml in spoke accounts (HubAccountId)
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def forwarder() -> dict[str, Any]:
    return load_template(ROOT / "infra" / "forwarder.yaml")


FORWARDED = {"ami-lifecycle-forward-ami-state", "ami-lifecycle-forward-tag-change", "ami-lifecycle-forward-parameter-change"}


def forwarder_role_policy(forwarder: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    (p,) = Resolver(forwarder, overrides).resolve(forwarder["Resources"]["ForwarderRole"]["Properties"]["Policies"])
    return p["PolicyDocument"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_spoke_forwarder_sends_every_region_to_the_hub_bus(forwarder, region):
    """In a spoke account (the test's account is 123456789012, the hub 111122223333) every
    region forwards, the home region too, and carries the quiesce document."""
    hub = "111122223333"
    overrides = {"HubAccountId": hub, "HomeRegion": region}  # region == the stack's own (us-east-1) or not
    rules = extract_rules(forwarder, overrides)
    assert {r.name for r in rules} == FORWARDED
    bus = f"arn:aws:events:{region}:{hub}:event-bus/default"
    for rule in rules:
        assert rule.target_props["Arn"] == bus, rule.name
        assert rule.target_props["RoleArn"] == {"Fn::GetAtt": ["ForwarderRole", "Arn"]}
    assert "QuiesceLinuxDocument" in created(forwarder, overrides)
    role = forwarder_role_policy(forwarder, overrides)
    me = f"arn:aws:iam::{ACCOUNT}:role/fwd"
    assert decide(Request("events:PutEvents", bus, me), identity=[role]) == ALLOW
    for other in (f"arn:aws:events:{region}:{ACCOUNT}:event-bus/default", f"arn:aws:events:{region}:999988887777:event-bus/default",
                  f"arn:aws:events:{region}:{hub}:event-bus/other"):
        assert decide(Request("events:PutEvents", other, me), identity=[role]) == IMPLICIT_DENY, other


def test_forwarder_in_the_hub_account_is_as_before(forwarder):
    """HubAccountId empty or this account's own id: the home region is empty, the others
    forward to this account's home bus (the single-account use)."""
    for hub in ("", ACCOUNT):
        assert extract_rules(forwarder, {"HubAccountId": hub, "HomeRegion": "us-east-1"}) == []
        assert created(forwarder, {"HubAccountId": hub, "HomeRegion": "us-east-1"}) == {"Placeholder"}
        rules = extract_rules(forwarder, {"HubAccountId": hub, "HomeRegion": "eu-central-1"})
        assert {r.name for r in rules} == FORWARDED
        assert {r.target_props["Arn"] for r in rules} == {f"arn:aws:events:eu-central-1:{ACCOUNT}:event-bus/default"}


def test_forwarder_hub_account_parameter(forwarder):
    p = forwarder["Parameters"]["HubAccountId"]
    assert p["Default"] == ""
    assert re.fullmatch(p["AllowedPattern"], "") and re.fullmatch(p["AllowedPattern"], "111122223333")
    assert not re.fullmatch(p["AllowedPattern"], "1111") and not re.fullmatch(p["AllowedPattern"], "111122223333,4")


# ----------------------------------------------------------------------------
# Drift: every SQS / DynamoDB call of the fan-out's AWS adapters is allowed
# ----------------------------------------------------------------------------

# SDK operation (snake case, as `.client.<op>()` calls it) -> the IAM actions it needs.
# TransactWriteItems has no action of its own: each Put / Update / ConditionCheck in it is
# authorized as PutItem / UpdateItem / ConditionCheckItem.
FAN_OUT_CALLS = {
    "send_message": ["sqs:SendMessage"], "send_message_batch": ["sqs:SendMessage"],
    "put_item": ["dynamodb:PutItem"], "update_item": ["dynamodb:UpdateItem"], "get_item": ["dynamodb:GetItem"],
    "query": ["dynamodb:Query"],
    "transact_write_items": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
}
ADAPTERS = [ROOT / "shared" / "src" / "aws" / "work_queue.rs", ROOT / "shared" / "src" / "aws" / "ledger.rs"]


def adapter_calls() -> set[str]:
    missing = [p.name for p in ADAPTERS if not p.exists()]
    if missing:
        pytest.skip(f"the fan-out adapters are not in this tree yet: {missing}")
    return {m for p in ADAPTERS for m in re.findall(r"\.client\s*\.([a-z_]+)\(\)", p.read_text())}


@pytest.mark.parametrize("fn", FANNED_OUT)
def test_every_fan_out_call_is_allowed(template, fn):
    calls = adapter_calls()
    assert calls, "no SDK call found: has the adapters' client field been renamed?"
    assert calls <= set(FAN_OUT_CALLS), \
        f"a new fan-out call {sorted(calls - set(FAN_OUT_CALLS))}: add its IAM action to the template and here"
    policy = identity(template, fn)
    for call in sorted(calls):
        for action in FAN_OUT_CALLS[call]:
            resource = WORK_QUEUES[fn] if action.startswith("sqs:") else RUNS_TABLE
            assert decide(ask(fn, action, resource), identity=[policy]) == ALLOW, (call, action)


def test_every_organizations_call_is_allowed(template):
    """The Organizations adapter (shared/src/aws/organizations.rs) calls only what the
    functions' many-accounts policies allow."""
    src = (ROOT / "shared" / "src" / "aws" / "organizations.rs").read_text()
    calls = {"organizations:" + "".join(w.capitalize() for w in c.split("_"))
             for c in re.findall(r"\.client\s*\.([a-z_]+)\(\)", src)}
    assert calls, "no SDK call found in organizations.rs"
    assert calls <= set(ORG_CALLS), f"a new Organizations call {sorted(calls - set(ORG_CALLS))}: allow it in the template"
    for fn in SUITE:
        policy = identity(template, fn)
        for action in sorted(calls):
            assert decide(ask(fn, action, "*"), identity=[policy]) == ALLOW, (fn, action)
