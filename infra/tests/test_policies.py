"""Policy tests: the tag-guard SCP and permissions boundary (infra/policies/), and from
template.yaml the continuation queue policy, the functions' KMS statements, the seal
key's policy, publish's SSM parameter / launch template statements and the operator's sample policies (rollback / unpin, migrate), evaluated for sample requests with the evaluator in policy_eval.py. Each good policy must give every expected decision; each
deliberately broken variant must get at least one decision wrong (the test proves the
scenarios can fail).

Run: make pattern-test  (or .venv/tools/bin/pytest infra/tests)
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest

from policy_eval import (ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, Unsupported, condition_holds, decide,
                         decide_kms)
from test_event_patterns import Resolver, load_template

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "infra" / "policies"
ACCOUNT = "123456789012"


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


# Role names CloudFormation gives the SAM functions' roles: <stack>-<Function>Role-<suffix>, under
# the RolePath /ami-lifecycle/<DeploymentName>/ (Globals in template.yaml).
SUITE = {fn: role(f"ami-lifecycle/ami-lifecycle/ami-lifecycle-{fn}Role-1A2B3C4D5E6F")
         for fn in ("CreateImageFunction", "ReplicateFunction", "ShareFunction", "CleanupFunction", "PublishFunction")}
# The spoke roles (infra/spoke-role.yaml) the hub's functions assume in the other accounts.
SPOKE_NAMES = {"CreateImageFunction": "create-image", "ReplicateFunction": "replicate", "ShareFunction": "share",
               "CleanupFunction": "cleanup", "PublishFunction": "publish"}
SPOKE = {fn: f"arn:aws:iam::444455556666:role/ami-lifecycle/ami-lifecycle-spoke-{name}" for fn, name in SPOKE_NAMES.items()}
OPERATOR = role("ami-lifecycle-operator")
DEVELOPER = role("developer")
LOOKALIKE = role("developer-ami-lifecycle-ShareFunctionRole-x")
ADMIN_POLICY = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

IMAGE = "arn:aws:ec2:us-east-1::image/ami-0abcdef1234567890"
SNAPSHOT = "arn:aws:ec2:us-east-1::snapshot/snap-0abcdef1234567890"
INSTANCE = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abcdef1234567890"
VOLUME = f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/vol-0abcdef1234567890"
LAUNCH_TEMPLATE = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:launch-template/lt-0abcdef1234567890"
TRACKED = {"aws:ResourceTag/ami-lifecycle:track": "web-1"}  # the launch template's track tag


def tagging(principal: str, action: str, resource: str, keys: list[str] | None, create_action: str | None = None) -> Request:
    ctx: dict[str, Any] = {"aws:PrincipalArn": principal}
    if keys is not None:
        ctx["aws:TagKeys"] = keys
    if create_action:
        ctx["ec2:CreateAction"] = create_action
    return Request(f"ec2:{action}", resource, principal, ctx)


# (label, request, must be denied by the guard?)
TAG_SCENARIOS: list[tuple[str, Request, bool]] = [
    ("forge managed-by on an image", tagging(DEVELOPER, "CreateTags", IMAGE, ["ami-lifecycle:managed-by"]), True),
    ("forge mixed with an ordinary key", tagging(DEVELOPER, "CreateTags", IMAGE, ["Name", "ami-lifecycle:managed-by"]), True),
    ("forge a share-granted record", tagging(DEVELOPER, "CreateTags", IMAGE, ["ami-lifecycle:share-granted-2"]), True),
    ("delete a record chunk", tagging(DEVELOPER, "DeleteTags", IMAGE, ["ami-lifecycle:share-granted"]), True),
    ("delete every tag of an image", tagging(DEVELOPER, "DeleteTags", IMAGE, None), True),
    ("opt an instance into reboots", tagging(DEVELOPER, "CreateTags", INSTANCE, ["ami-lifecycle:schedule"]), True),
    ("tag a snapshot managed", tagging(DEVELOPER, "CreateTags", SNAPSHOT, ["ami-lifecycle:managed-by"]), True),
    ("forge at creation (CreateImage)", tagging(DEVELOPER, "CreateTags", IMAGE, ["ami-lifecycle:managed-by"], "CreateImage"), True),
    ("forge at creation (CopyImage)", tagging(DEVELOPER, "CreateTags", IMAGE, ["ami-lifecycle:slot"], "CopyImage"), True),
    ("launch with the schedule tag", tagging(DEVELOPER, "CreateTags", INSTANCE, ["ami-lifecycle:schedule"], "RunInstances"), True),
    ("a role whose name only contains the suite's", tagging(LOOKALIKE, "CreateTags", IMAGE, ["ami-lifecycle:share-status"]), True),
    ("the suite's role name outside the deployment's path", tagging(role("ami-lifecycle-ShareFunctionRole-1A2B3C4D5E6F"),
                                                                    "CreateTags", IMAGE, ["ami-lifecycle:share-status"]), True),
    ("a spoke-like role name under another path", tagging(role("other/ami-lifecycle-spoke-share"), "CreateTags", IMAGE,
                                                          ["ami-lifecycle:share-status"]), True),
    ("the spoke publish role tags (publish never tags)", tagging(SPOKE["PublishFunction"], "CreateTags", IMAGE,
                                                                 ["ami-lifecycle:share-with"]), True),
    # publish writes no tag, so the guard does not exempt it
    ("publish tags an image", tagging(SUITE["PublishFunction"], "CreateTags", IMAGE, ["ami-lifecycle:share-with"]), True),
    ("ordinary tags on an image", tagging(DEVELOPER, "CreateTags", IMAGE, ["Name", "team"]), False),
    ("ordinary tags at launch", tagging(DEVELOPER, "CreateTags", INSTANCE, ["Name"], "RunInstances"), False),
    ("delete an ordinary tag", tagging(DEVELOPER, "DeleteTags", INSTANCE, ["Name"]), False),
    ("delete every tag of a volume (not guarded)", tagging(DEVELOPER, "DeleteTags", VOLUME, None), False),
    ("create-image tags at CreateImage", tagging(SUITE["CreateImageFunction"], "CreateTags", SNAPSHOT,
                                                  ["ami-lifecycle:managed-by", "ami-lifecycle:slot", "Name"], "CreateImage"), False),
    ("replicate tags at CopyImage", tagging(SUITE["ReplicateFunction"], "CreateTags", IMAGE,
                                            ["ami-lifecycle:managed-by", "ami-lifecycle:source-image"], "CopyImage"), False),
    ("share writes its status", tagging(SUITE["ShareFunction"], "CreateTags", IMAGE, ["ami-lifecycle:share-status"]), False),
    ("cleanup removes a tag", tagging(SUITE["CleanupFunction"], "DeleteTags", IMAGE, ["ami-lifecycle:share-granted"]), False),
    ("the spoke create-image role tags at CreateImage", tagging(SPOKE["CreateImageFunction"], "CreateTags", SNAPSHOT,
                                                                ["ami-lifecycle:managed-by"], "CreateImage"), False),
    ("the spoke share role writes its status", tagging(SPOKE["ShareFunction"], "CreateTags", IMAGE,
                                                       ["ami-lifecycle:share-status"]), False),
    ("the operator opts an instance in", tagging(OPERATOR, "CreateTags", INSTANCE, ["ami-lifecycle:schedule"]), False),
]


def load(name: str) -> dict[str, Any]:
    return json.loads((POLICIES / name).read_text())


def scp_denies(policy: dict[str, Any], req: Request) -> bool:
    return decide(req, identity=[ADMIN_POLICY], scps=[policy]) == EXPLICIT_DENY


def boundary_denies(policy: dict[str, Any], req: Request) -> bool:
    return decide(req, identity=[ADMIN_POLICY], boundary=policy) != ALLOW


GUARDS: dict[str, tuple[str, Callable[[dict[str, Any], Request], bool]]] = {
    "scp": ("tag-guard-scp.json", scp_denies),
    "boundary": ("tag-guard-permissions-boundary.json", boundary_denies),
}


def wrong_decisions(policy: dict[str, Any], denies: Callable[[dict[str, Any], Request], bool]) -> list[str]:
    return [label for label, req, want in TAG_SCENARIOS if denies(policy, req) != want]


@pytest.mark.parametrize("guard", sorted(GUARDS))
def test_tag_guard_decides_every_scenario(guard):
    name, denies = GUARDS[guard]
    assert wrong_decisions(load(name), denies) == []


def test_scp_and_boundary_deny_the_same_things():
    scp, boundary = load("tag-guard-scp.json"), load("tag-guard-permissions-boundary.json")
    assert boundary["Statement"][0] == {"Sid": "BoundaryCeiling", "Effect": "Allow", "Action": "*", "Resource": "*"}
    assert boundary["Statement"][1:] == scp["Statement"]
    assert len(json.dumps(scp, separators=(",", ":"))) <= 5120, "SCPs are limited to 5,120 characters"


# Suite functions whose roles may write no tag at all: the guard does not exempt them (an
# exemption that nothing needs only widens what a changed role could do).
NEVER_TAG = {"PublishFunction"}


def test_every_suite_function_is_exempt():
    """The exemption names exactly the roles of the template's functions but those that
    never tag (under the deployment's role path), their spoke roles in the other accounts,
    plus the operator; a function left out may indeed not tag."""
    t = load_template(ROOT / "template.yaml")
    functions = {k for k, v in t["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == set(SUITE)
    exempt = load("tag-guard-scp.json")["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert sorted(exempt) == sorted([f"arn:aws:iam::*:role/ami-lifecycle/ami-lifecycle/ami-lifecycle-{fn}Role-*"
                                     for fn in functions - NEVER_TAG]
                                    + [f"arn:aws:iam::*:role/ami-lifecycle/ami-lifecycle-spoke-{SPOKE_NAMES[fn]}"
                                       for fn in functions - NEVER_TAG]
                                    + ["arn:aws:iam::*:role/ami-lifecycle-operator"])
    r = Resolver(t, {"KmsKeyArns": KEY})
    for fn in NEVER_TAG:
        identity = [role_identity(t, r, fn)]
        for action in ("ec2:CreateTags", "ec2:DeleteTags"):
            for resource in (IMAGE, SNAPSHOT, INSTANCE, LAUNCH_TEMPLATE):
                req = Request(action, resource, SUITE[fn], {"aws:PrincipalArn": SUITE[fn], "aws:TagKeys": ["Name"],
                                                            **TRACKED})
                assert decide(req, identity=identity) == IMPLICIT_DENY, (fn, action, resource)


def _drop_exemption(p):
    for s in p["Statement"]:
        s.get("Condition", {}).pop("ArnNotLike", None)


def _all_values(p):
    for s in p["Statement"]:
        c = s.get("Condition", {})
        if "ForAnyValue:StringLike" in c:
            c["ForAllValues:StringLike"] = c.pop("ForAnyValue:StringLike")


def _string_equals(p):
    for s in p["Statement"]:
        c = s.get("Condition", {})
        if "ForAnyValue:StringLike" in c:
            c["ForAnyValue:StringEquals"] = c.pop("ForAnyValue:StringLike")


def _no_delete_all(p):
    p["Statement"] = [s for s in p["Statement"] if s.get("Sid") != "DenyDeletingAllTagsOutsideTheSuite"]


def _images_only(p):
    for s in p["Statement"]:
        if s["Effect"] == "Deny":
            s["Resource"] = ["arn:aws:ec2:*::image/*"]


def _exempt_by_source_arn(p):
    for s in p["Statement"]:
        c = s.get("Condition", {})
        if "ArnNotLike" in c:
            c["ArnNotLike"] = {"aws:SourceArn": c["ArnNotLike"]["aws:PrincipalArn"]}


def _exempt_everyone_named_like(p):
    for s in p["Statement"]:
        c = s.get("Condition", {})
        if "ArnNotLike" in c:
            c["ArnNotLike"]["aws:PrincipalArn"] = ["arn:aws:iam::*:role/*ami-lifecycle*"]


BAD_VARIANTS = {
    "without the PrincipalArn exception": _drop_exemption,
    "aws:TagKeys with ForAllValues": _all_values,
    "aws:TagKeys with StringEquals (no wildcard)": _string_equals,
    "without the delete-every-tag statement": _no_delete_all,
    "images only": _images_only,
    "exemption on aws:SourceArn": _exempt_by_source_arn,
    "exemption by a loose name pattern": _exempt_everyone_named_like,
}


@pytest.mark.parametrize("guard", sorted(GUARDS))
@pytest.mark.parametrize("variant", sorted(BAD_VARIANTS))
def test_bad_tag_guard_is_caught(guard, variant):
    name, denies = GUARDS[guard]
    policy = copy.deepcopy(load(name))
    BAD_VARIANTS[variant](policy)
    assert policy != load(name), "the mutation changed nothing"
    assert wrong_decisions(policy, denies), f"{variant}: no scenario notices the broken {guard}"


# ----------------------------------------------------------------------------
# The evaluator itself
# ----------------------------------------------------------------------------

def test_evaluator_semantics():
    r = Request("ec2:CreateTags", IMAGE, DEVELOPER, {"aws:TagKeys": ["Name", "ami-lifecycle:x"]})
    empty = Request("ec2:DeleteTags", IMAGE, DEVELOPER, {})
    assert condition_holds({"ForAnyValue:StringLike": {"aws:tagkeys": "ami-lifecycle:*"}}, r)  # key names ignore case
    assert not condition_holds({"ForAllValues:StringLike": {"aws:TagKeys": "ami-lifecycle:*"}}, r)
    assert condition_holds({"ForAllValues:StringLike": {"aws:TagKeys": "ami-lifecycle:*"}}, empty)  # vacuous
    assert not condition_holds({"ForAnyValue:StringLike": {"aws:TagKeys": "ami-lifecycle:*"}}, empty)
    assert condition_holds({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}}, empty)  # missing + negated
    assert not condition_holds({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}}, empty)
    assert condition_holds({"Null": {"aws:TagKeys": "true"}}, empty)
    assert not condition_holds({"Null": {"aws:TagKeys": "true"}}, r)
    assert not condition_holds({"StringLike": {"k": "Ami-*"}}, Request("a", "r", "p", {"k": "ami-1"}))  # values keep case
    for op in ("StringLikeIfExists", "NumericLessThan", "ForAnyValue:IpAddress", "DateGreaterThan"):
        with pytest.raises(Unsupported):
            condition_holds({op: {"k": "v"}}, r)
    with pytest.raises(Unsupported):
        decide(r, identity=[{"Statement": [{"Effect": "Allow", "NotPrincipal": "*", "Action": "*", "Resource": "*"}]}])
    assert decide(r) == IMPLICIT_DENY
    assert decide(r, identity=[ADMIN_POLICY]) == ALLOW


# ----------------------------------------------------------------------------
# The continuation queue: only create-image may send (reboot authority)
# ----------------------------------------------------------------------------

QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ami-lifecycle-continuation"
SEAL_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/5ea15ea1-0000-4000-8000-5ea15ea15ea1"
RUNS_TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ami-lifecycle-runs"
# The fan-out's work queues (i18), one per fanned-out function. share does not fan out (its
# grant record is safe with one run at a time) and publish neither: no queue for them.
FANNED_OUT_FUNCTIONS = ("CreateImageFunction", "ReplicateFunction", "CleanupFunction")
WORK_QUEUES = {fn: f"arn:aws:sqs:us-east-1:{ACCOUNT}:ami-lifecycle-{SPOKE_NAMES[fn]}-work"
               for fn in FANNED_OUT_FUNCTIONS}
CONCRETE = {("ContinuationQueue", "Arn"): QUEUE_ARN, ("SealKey", "Arn"): SEAL_KEY,
            ("RunsTable", "Arn"): RUNS_TABLE,
            **{(fn.removesuffix("Function") + "WorkQueue", "Arn"): arn for fn, arn in WORK_QUEUES.items()},
            **{(f"{fn}Role", "Arn"): arn for fn, arn in SUITE.items()}}


def concrete(node: Any) -> Any:
    """Resolved template node with the GetAtts these tests need made concrete."""
    if isinstance(node, list):
        return [concrete(v) for v in node]
    if isinstance(node, dict):
        if set(node) == {"Fn::GetAtt"}:
            return CONCRETE[tuple(node["Fn::GetAtt"])]
        return {k: concrete(v) for k, v in node.items()}
    return node


@pytest.fixture(scope="module")
def queue_policies():
    t = load_template(ROOT / "template.yaml")
    r = Resolver(t)
    policies = [v for v in t["Resources"].values() if v["Type"] == "AWS::SQS::QueuePolicy"
                and {"Ref": "ContinuationQueue"} in v["Properties"]["Queues"]]
    assert len(policies) == 1, "the continuation queue needs exactly one queue policy"
    resource = concrete(r.resolve(policies[0]["Properties"]["PolicyDocument"]))
    create_image = [concrete(p) for p in r.resolve(t["Resources"]["CreateImageFunction"]["Properties"]["Policies"])]
    return resource, create_image


def send(principal: str, **ctx: Any) -> Request:
    context = {"aws:PrincipalArn": principal} if principal.startswith("arn:") else {}
    context.update(ctx)
    return Request("sqs:SendMessage", QUEUE_ARN, principal, context)


def queue_scenarios(create_image_identity):
    sqs_everything = {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    rule = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/ami-lifecycle-schedule-daily"
    return [
        ("create-image continues its waves", send(SUITE["CreateImageFunction"]), [create_image_identity], ALLOW),
        ("create-image receives (event source mapping)", Request("sqs:ReceiveMessage", QUEUE_ARN, SUITE["CreateImageFunction"],
                                                                 {"aws:PrincipalArn": SUITE["CreateImageFunction"]}),
         [create_image_identity], ALLOW),
        ("an admin of the account sends", send(role("admin")), [ADMIN_POLICY], EXPLICIT_DENY),
        ("another suite function sends", send(SUITE["ShareFunction"]), [sqs_everything], EXPLICIT_DENY),
        ("the operator sends", send(OPERATOR), [sqs_everything], EXPLICIT_DENY),
        ("an EventBridge rule targets the queue", send("events.amazonaws.com", **{"aws:SourceArn": rule}), [], EXPLICIT_DENY),
        ("another account sends", send("arn:aws:iam::444455556666:role/x"), [], EXPLICIT_DENY),
    ]


def queue_wrong(resource, create_image_identity) -> list[str]:
    return [label for label, req, identity, want in queue_scenarios(create_image_identity)
            if decide(req, identity=identity, resource=resource) != want]


def test_continuation_queue_admits_only_create_image(queue_policies):
    resource, create_image = queue_policies
    identity = {"Statement": [s for p in create_image for s in p["Statement"]]}
    assert queue_wrong(resource, identity) == []


def _allow_only(p):
    p["Statement"] = [s for s in p["Statement"] if s["Effect"] == "Allow"]


def _deny_on_source_arn(p):
    for s in p["Statement"]:
        if s["Effect"] == "Deny":
            s["Condition"] = {"ArnNotEquals": {"aws:SourceArn": s["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}}


def _deny_any_suite_role(p):
    for s in p["Statement"]:
        if s["Effect"] == "Deny":
            s["Condition"] = {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/ami-lifecycle-*"}}


@pytest.mark.parametrize("variant", ["allow only, no deny", "deny keyed on aws:SourceArn",
                                     "deny exempts every suite role"])
def test_bad_queue_policy_is_caught(queue_policies, variant):
    resource, create_image = queue_policies
    identity = {"Statement": [s for p in create_image for s in p["Statement"]]}
    bad = copy.deepcopy(resource)
    {"allow only, no deny": _allow_only, "deny keyed on aws:SourceArn": _deny_on_source_arn,
     "deny exempts every suite role": _deny_any_suite_role}[variant](bad)
    assert bad != resource
    assert queue_wrong(bad, identity), f"{variant}: no scenario notices the broken queue policy"


# ----------------------------------------------------------------------------
# KMS: every call the code makes is still allowed, and nothing more
# ----------------------------------------------------------------------------

KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _rust_grant_operations() -> list[str]:
    src = (ROOT / "shared" / "src" / "share" / "plan.rs").read_text()
    m = re.search(r"pub const GRANT_OPERATIONS: \[&str; \d+\] = \[(.*?)\];", src, re.S)
    assert m, "GRANT_OPERATIONS not found in shared/src/share/plan.rs"
    return re.findall(r'"([A-Za-z]+)"', m.group(1))


def _kms_calls() -> set[str]:
    """KMS operations the AWS adapters call (`.describe_key()` -> kms:DescribeKey): every
    file under shared/src/aws that uses the KMS SDK and not EC2's (kms.rs, and a seal
    adapter wherever it lives there)."""
    calls: set[str] = set()
    for f in sorted((ROOT / "shared" / "src" / "aws").glob("*.rs")):
        src = f.read_text()
        if "aws_sdk_kms" in src and "aws_sdk_ec2" not in src and not f.name.endswith("tests.rs"):
            calls |= set(re.findall(r"\.client\s*\.([a-z_]+)\(\)", src))
    return {"kms:" + "".join(w.capitalize() for w in c.split("_")) for c in calls}


# Every KMS call the code may make, and which role makes it on which key: a new call
# fails test_every_kms_call_is_known until it is added here, to the template and to a test.
KMS_CALLS = {"kms:DescribeKey", "kms:ListGrants", "kms:CreateGrant", "kms:RevokeGrant",
             "kms:GenerateMac", "kms:VerifyMac"}


def test_every_kms_call_is_known():
    calls = _kms_calls()
    assert calls <= KMS_CALLS, f"a new KMS call: {sorted(calls - KMS_CALLS)}: add it to the template and to these tests"
    assert {"kms:DescribeKey", "kms:ListGrants", "kms:CreateGrant", "kms:RevokeGrant"} <= calls


def role_identity(t: dict[str, Any], r: Resolver, fn: str, attached: bool = True) -> dict[str, Any]:
    """Every statement of a function's role: its SAM Policies and, with `attached`, the
    AWS::IAM::Policy resources attached to the role (the seal policies)."""
    statements = [s for p in r.resolve(t["Resources"][fn]["Properties"]["Policies"]) for s in p["Statement"]]
    if attached:
        for v in t["Resources"].values():
            if "Condition" in v and not r.condition(v["Condition"]):
                continue  # not created with these parameters (the many-accounts policies without Accounts)
            if v["Type"] == "AWS::IAM::Policy" and {"Ref": f"{fn}Role"} in v["Properties"]["Roles"]:
                statements += r.resolve(v["Properties"]["PolicyDocument"])["Statement"]
    return {"Statement": concrete(statements)}


@pytest.fixture(scope="module")
def kms_roles():
    t = load_template(ROOT / "template.yaml")
    r = Resolver(t, {"KmsKeyArns": KEY})
    return role_identity(t, r, "ShareFunction"), role_identity(t, r, "ReplicateFunction"), role_identity(t, r, "CleanupFunction")


def kms(action: str, principal: str, **ctx: Any) -> Request:
    return Request(action, KEY, principal, {"aws:PrincipalArn": principal, **ctx})


def test_share_may_make_every_kms_call_it_makes(kms_roles):
    share, _, _ = kms_roles
    ops = _rust_grant_operations()
    p = SUITE["ShareFunction"]
    grant = {"kms:GrantOperations": ops, "kms:GranteePrincipal": "arn:aws:iam::111122223333:root",
             "kms:GrantIsForAWSResource": "false"}
    for action, ctx, want in [
        ("kms:DescribeKey", {}, ALLOW),
        ("kms:ListGrants", {}, ALLOW),
        ("kms:RevokeGrant", {}, ALLOW),
        ("kms:CreateGrant", grant, ALLOW),
        ("kms:CreateGrant", {**grant, "kms:GrantOperations": ops + ["Encrypt"]}, IMPLICIT_DENY),
        ("kms:CreateGrant", {**grant, "kms:GrantOperations": []}, IMPLICIT_DENY),
        ("kms:CreateGrant", {**grant, "kms:GranteePrincipal": "arn:aws:iam::111122223333:role/anyone"}, IMPLICIT_DENY),
        ("kms:RetireGrant", {}, IMPLICIT_DENY),
        ("kms:Decrypt", {}, IMPLICIT_DENY),
    ]:
        assert decide(kms(action, p, **ctx), identity=[share]) == want, (action, ctx)
    other_key = Request("kms:RevokeGrant", KEY.replace("1234abcd", "9999abcd"), p, {"aws:PrincipalArn": p})
    assert decide(other_key, identity=[share]) == IMPLICIT_DENY


def test_replicate_uses_keys_only_through_ec2(kms_roles):
    _, replicate, _ = kms_roles
    p = SUITE["ReplicateFunction"]
    via_ec2 = {"kms:ViaService": "ec2.eu-west-1.amazonaws.com"}
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                   "kms:GenerateDataKeyWithoutPlaintext"):
        assert decide(kms(action, p, **via_ec2), identity=[replicate]) == ALLOW, action
        assert decide(kms(action, p), identity=[replicate]) == IMPLICIT_DENY, f"{action} called directly"
        assert decide(kms(action, p, **{"kms:ViaService": "s3.eu-west-1.amazonaws.com"}),
                      identity=[replicate]) == IMPLICIT_DENY, f"{action} via S3"
    assert decide(kms("kms:DescribeKey", p), identity=[replicate]) == ALLOW  # check_keys calls it directly
    ebs_grant = {**via_ec2, "kms:GrantIsForAWSResource": "true"}
    assert decide(kms("kms:CreateGrant", p, **ebs_grant), identity=[replicate]) == ALLOW
    assert decide(kms("kms:CreateGrant", p, **{"kms:GrantIsForAWSResource": "false"}), identity=[replicate]) == IMPLICIT_DENY
    for action in ("kms:RevokeGrant", "kms:ListGrants", "kms:RetireGrant"):
        assert decide(kms(action, p), identity=[replicate]) == IMPLICIT_DENY, action


def test_cleanup_retires_share_grants_and_nothing_else(kms_roles):
    """cleanup revokes the grants share made for an image it deletes: DescribeKey, ListGrants
    and RevokeGrant on the listed keys (`share::retire_image_grants`), and no other use."""
    _, _, cleanup = kms_roles
    p = SUITE["CleanupFunction"]
    for action in ("kms:DescribeKey", "kms:ListGrants", "kms:RevokeGrant"):
        assert decide(kms(action, p), identity=[cleanup]) == ALLOW, action
        other_key = Request(action, KEY.replace("1234abcd", "9999abcd"), p, {"aws:PrincipalArn": p})
        assert decide(other_key, identity=[cleanup]) == IMPLICIT_DENY, f"{action} on an unlisted key"
    for action in ("kms:CreateGrant", "kms:RetireGrant", "kms:Decrypt", "kms:Encrypt"):
        assert decide(kms(action, p), identity=[cleanup]) == IMPLICIT_DENY, action
    t = load_template(ROOT / "template.yaml")
    no_keys = role_identity(t, Resolver(t), "CleanupFunction")
    assert decide(kms("kms:RevokeGrant", p), identity=[no_keys]) == IMPLICIT_DENY, "no KmsKeyArns, no KMS"


# ----------------------------------------------------------------------------
# The seal key: only the suite's roles (and the operator role, when named) use it
# ----------------------------------------------------------------------------

ROOT_USER = f"arn:aws:iam::{ACCOUNT}:root"
OTHER_ACCOUNT = "arn:aws:iam::444455556666:role/ami-lifecycle-CreateImageFunctionRole-1A2B3C4D5E6F"


def seal_setup(operator: str = "") -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The resolved key policy, and each suite role's identity policies (with and without
    its seal policy), for OperatorRoleArn = operator."""
    t = load_template(ROOT / "template.yaml")
    r = Resolver(t, {"OperatorRoleArn": operator})
    key_policy = concrete(r.resolve(t["Resources"]["SealKey"]["Properties"]["KeyPolicy"]))
    roles = {fn: role_identity(t, r, fn) for fn in SUITE}
    roles.update({f"{fn} without its seal policy": role_identity(t, r, fn, attached=False) for fn in SUITE})
    return key_policy, roles


def mac(action: str, principal: str, algorithm: str = "HMAC_SHA_256") -> Request:
    return Request(action, SEAL_KEY, principal, {"aws:PrincipalArn": principal, "kms:MacAlgorithm": algorithm})


def seal_scenarios(roles: dict[str, dict[str, Any]], operator_named: bool):
    """(label, request, identity policies, expected decision)."""
    out = []
    for fn in ("CreateImageFunction", "ReplicateFunction", "ShareFunction"):
        out += [(f"{fn} makes a seal", mac("kms:GenerateMac", SUITE[fn]), [roles[fn]], ALLOW),
                (f"{fn} checks a seal", mac("kms:VerifyMac", SUITE[fn]), [roles[fn]], ALLOW),
                (f"{fn} with another algorithm", mac("kms:GenerateMac", SUITE[fn], "HMAC_SHA_512"), [roles[fn]], IMPLICIT_DENY),
                (f"{fn}: the key policy alone is not enough", mac("kms:GenerateMac", SUITE[fn]),
                 [roles[f"{fn} without its seal policy"]], IMPLICIT_DENY)]
    cleanup = SUITE["CleanupFunction"]
    out += [
        ("cleanup checks a seal", mac("kms:VerifyMac", cleanup), [roles["CleanupFunction"]], ALLOW),
        ("cleanup cannot make a seal, even given the permission", mac("kms:GenerateMac", cleanup), [ADMIN_POLICY], EXPLICIT_DENY),
        # publish only points parameters at sealed images: it checks, never vouches
        ("publish checks a seal", mac("kms:VerifyMac", SUITE["PublishFunction"]), [roles["PublishFunction"]], ALLOW),
        ("publish: the key policy alone is not enough", mac("kms:VerifyMac", SUITE["PublishFunction"]),
         [roles["PublishFunction without its seal policy"]], IMPLICIT_DENY),
        ("publish cannot make a seal, even given the permission", mac("kms:GenerateMac", SUITE["PublishFunction"]),
         [ADMIN_POLICY], EXPLICIT_DENY),
        ("an administrator makes a seal", mac("kms:GenerateMac", role("admin")), [ADMIN_POLICY], EXPLICIT_DENY),
        ("an administrator checks a seal", mac("kms:VerifyMac", role("admin")), [ADMIN_POLICY], EXPLICIT_DENY),
        ("an administrator grants himself the key", Request("kms:CreateGrant", SEAL_KEY, role("admin"),
                                                             {"aws:PrincipalArn": role("admin")}), [ADMIN_POLICY], IMPLICIT_DENY),
        ("an administrator administers the key", Request("kms:PutKeyPolicy", SEAL_KEY, role("admin"),
                                                          {"aws:PrincipalArn": role("admin")}), [ADMIN_POLICY], ALLOW),
        ("the account's root user makes a seal", mac("kms:GenerateMac", ROOT_USER), [], EXPLICIT_DENY),
        ("a role named like the suite's", mac("kms:GenerateMac", LOOKALIKE), [ADMIN_POLICY], EXPLICIT_DENY),
        ("the suite's role name in another account", mac("kms:GenerateMac", OTHER_ACCOUNT), [ADMIN_POLICY], EXPLICIT_DENY),
        ("a developer checks a seal", mac("kms:VerifyMac", DEVELOPER), [ADMIN_POLICY], EXPLICIT_DENY),
    ]
    if operator_named:
        out += [("the operator adopts (makes a seal)", mac("kms:GenerateMac", OPERATOR), [ADMIN_POLICY], ALLOW),
                ("the operator checks a seal", mac("kms:VerifyMac", OPERATOR), [ADMIN_POLICY], ALLOW),
                ("the operator without IAM permission", mac("kms:GenerateMac", OPERATOR), [], IMPLICIT_DENY)]
    else:
        out += [("no operator role: the operator makes a seal", mac("kms:GenerateMac", OPERATOR), [ADMIN_POLICY], EXPLICIT_DENY)]
    return out


def seal_wrong(key_policy, roles, operator_named: bool) -> list[str]:
    return [f"{label}: {decide_kms(req, key_policy, identity)} != {want}"
            for label, req, identity, want in seal_scenarios(roles, operator_named)
            if decide_kms(req, key_policy, identity) != want]


@pytest.mark.parametrize("operator", ["", OPERATOR], ids=["no operator role", "operator role named"])
def test_only_the_suite_uses_the_seal_key(operator):
    key_policy, roles = seal_setup(operator)
    assert seal_wrong(key_policy, roles, bool(operator)) == []


def test_seal_key_admin_statement_grants_no_use():
    key_policy, _ = seal_setup()
    (admin,) = [s for s in key_policy["Statement"] if s["Sid"] == "AccountAdministersNotUses"]
    use = {"kms:GenerateMac", "kms:VerifyMac", "kms:CreateGrant", "kms:Encrypt", "kms:Decrypt"}
    assert not use & set(admin["Action"]) and all("*" not in a for a in admin["Action"])


def _without_denies(p):
    p["Statement"] = [s for s in p["Statement"] if s["Effect"] != "Deny"]


def _root_uses_everything(p):
    _without_denies(p)
    for s in p["Statement"]:
        if s["Sid"] == "AccountAdministersNotUses":
            s["Action"] = "kms:*"


def _cleanup_makes_seals(p):
    cleanup = SUITE["CleanupFunction"]
    for s in p["Statement"]:
        if s.get("Sid") in ("SuiteMakesSeals", "NobodyElseMakesSeals"):
            c = s["Condition"]["ArnEquals" if s["Effect"] == "Allow" else "ArnNotEquals"]
            c["aws:PrincipalArn"] = c["aws:PrincipalArn"] + [cleanup]


def _deny_by_name_pattern(p):
    for s in p["Statement"]:
        if s["Effect"] == "Deny":
            s["Condition"] = {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::*:role/*ami-lifecycle-*"}}


def _deny_on_source_arn_for_key(p):
    for s in p["Statement"]:
        if s["Effect"] == "Deny":
            s["Condition"] = {"ArnNotEquals": {"aws:SourceArn": s["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}}


SEAL_KEY_BAD_VARIANTS = {
    "no explicit Deny": _without_denies,
    "the account root may do kms:*, no Deny": _root_uses_everything,
    "cleanup may make seals": _cleanup_makes_seals,
    "Deny exempts a name pattern": _deny_by_name_pattern,
    "Deny keyed on aws:SourceArn": _deny_on_source_arn_for_key,
}


@pytest.mark.parametrize("variant", sorted(SEAL_KEY_BAD_VARIANTS))
def test_bad_seal_key_policy_is_caught(variant):
    key_policy, roles = seal_setup()
    bad = copy.deepcopy(key_policy)
    SEAL_KEY_BAD_VARIANTS[variant](bad)
    assert bad != key_policy, "the mutation changed nothing"
    assert seal_wrong(bad, roles, operator_named=False), f"{variant}: no scenario notices the broken key policy"


def test_kms_evaluator_semantics():
    root_allows = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROOT_USER}, "Action": "kms:VerifyMac", "Resource": "*"}]}
    direct = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": DEVELOPER}, "Action": "kms:VerifyMac", "Resource": "*"}]}
    may_verify = {"Statement": [{"Effect": "Allow", "Action": "kms:VerifyMac", "Resource": "*"}]}
    req = mac("kms:VerifyMac", DEVELOPER)
    assert decide_kms(req, root_allows) == IMPLICIT_DENY  # the account's root only delegates to IAM
    assert decide_kms(req, root_allows, [may_verify]) == ALLOW
    assert decide_kms(req, direct) == ALLOW  # a key policy naming the principal needs no IAM policy
    assert decide_kms(req, {"Statement": []}, [ADMIN_POLICY]) == IMPLICIT_DENY  # IAM alone never opens a key
    assert decide_kms(mac("kms:VerifyMac", ROOT_USER), root_allows) == ALLOW
    assert decide_kms(mac("kms:VerifyMac", OTHER_ACCOUNT), root_allows, [ADMIN_POLICY]) == IMPLICIT_DENY
    deny_iam = {"Statement": [{"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]}
    assert decide_kms(req, direct, [deny_iam]) == EXPLICIT_DENY


# ----------------------------------------------------------------------------
# publish: latest-image parameters under /ami-lifecycle/<deployment>/, tracked templates
# ----------------------------------------------------------------------------

def parameter(name: str, region: str = "eu-west-1", account: str = ACCOUNT) -> str:
    """The ARN IAM authorizes for a parameter (or a GetParametersByPath path): no leading '/'."""
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


LATEST = "/ami-lifecycle/ami-lifecycle/web-1/latest"
PINNED = "/ami-lifecycle/ami-lifecycle/web-1/pinned"
PATH = "/ami-lifecycle/ami-lifecycle"


def ask(fn: str, action: str, resource: str, **ctx: Any) -> Request:
    return Request(action, resource, SUITE[fn], {"aws:PrincipalArn": SUITE[fn], **ctx})


def publish_scenarios() -> list[tuple[str, Request, str]]:
    """(label, request by publish's role, expected decision): every call the contract
    names, and the neighbours it must not reach."""
    p = "PublishFunction"
    out = []
    for action in ("ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory",
                   "ssm:LabelParameterVersion", "ssm:UnlabelParameterVersion"):
        out += [(f"{action} on the latest parameter", ask(p, action, parameter(LATEST)), ALLOW),
                (f"{action} in the home region", ask(p, action, parameter(LATEST, "us-east-1")), ALLOW)]
    out += [
        ("reads the pin", ask(p, "ssm:GetParameter", parameter(PINNED)), ALLOW),
        ("lists the deployment's path", ask(p, "ssm:GetParametersByPath", parameter(PATH)), ALLOW),
        ("lists a lineage's path", ask(p, "ssm:GetParametersByPath", parameter(PATH + "/web-1")), ALLOW),
        ("puts a parameter of another deployment", ask(p, "ssm:PutParameter", parameter("/ami-lifecycle/prod2/web-1/latest")),
         IMPLICIT_DENY),
        ("puts under a deployment named like this one", ask(p, "ssm:PutParameter",
                                                            parameter("/ami-lifecycle/ami-lifecycle-2/web-1/latest")), IMPLICIT_DENY),
        ("puts an application's parameter", ask(p, "ssm:PutParameter", parameter("/app/db-url")), IMPLICIT_DENY),
        ("puts a top-level parameter", ask(p, "ssm:PutParameter", parameter("latest")), IMPLICIT_DENY),
        ("puts in another account", ask(p, "ssm:PutParameter", parameter(LATEST, account="444455556666")), IMPLICIT_DENY),
        ("lists the parent path", ask(p, "ssm:GetParametersByPath", parameter("/ami-lifecycle")), IMPLICIT_DENY),
        ("lists everything", ask(p, "ssm:GetParametersByPath", parameter("/")), IMPLICIT_DENY),
        ("reads an application's secret", ask(p, "ssm:GetParameter", parameter("/app/db-password")), IMPLICIT_DENY),
        # the pin is the operator's (amictl rollback / unpin); publish never deletes
        ("deletes the pin", ask(p, "ssm:DeleteParameter", parameter(PINNED)), IMPLICIT_DENY),
        ("deletes latest", ask(p, "ssm:DeleteParameters", parameter(LATEST)), IMPLICIT_DENY),
        ("tags a parameter", ask(p, "ssm:AddTagsToResource", parameter(LATEST)), IMPLICIT_DENY),
        # SSM validates an aws:ec2:image value with the caller's DescribeImages
        ("describes images (SSM's aws:ec2:image validation)", ask(p, "ec2:DescribeImages", "*"), ALLOW),
        ("describes launch templates", ask(p, "ec2:DescribeLaunchTemplates", "*"), ALLOW),
        ("describes launch template versions", ask(p, "ec2:DescribeLaunchTemplateVersions", "*"), ALLOW),
        ("describes instances (the readable lineage name)", ask(p, "ec2:DescribeInstances", "*"), ALLOW),
        ("new version of a tracked template", ask(p, "ec2:CreateLaunchTemplateVersion", LAUNCH_TEMPLATE, **TRACKED), ALLOW),
        ("default version of a tracked template", ask(p, "ec2:ModifyLaunchTemplate", LAUNCH_TEMPLATE, **TRACKED), ALLOW),
        ("new version of an untracked template", ask(p, "ec2:CreateLaunchTemplateVersion", LAUNCH_TEMPLATE), IMPLICIT_DENY),
        ("default version of an untracked template", ask(p, "ec2:ModifyLaunchTemplate", LAUNCH_TEMPLATE), IMPLICIT_DENY),
        ("a template with another ami-lifecycle tag", ask(p, "ec2:CreateLaunchTemplateVersion", LAUNCH_TEMPLATE,
                                                          **{"aws:ResourceTag/ami-lifecycle:track-default": "true"}), IMPLICIT_DENY),
        ("a tracked template of another account", ask(p, "ec2:CreateLaunchTemplateVersion",
                                                      LAUNCH_TEMPLATE.replace(ACCOUNT, "444455556666"), **TRACKED), IMPLICIT_DENY),
        ("deletes a version of a tracked template", ask(p, "ec2:DeleteLaunchTemplateVersions", LAUNCH_TEMPLATE, **TRACKED),
         IMPLICIT_DENY),
        ("deletes a tracked template", ask(p, "ec2:DeleteLaunchTemplate", LAUNCH_TEMPLATE, **TRACKED), IMPLICIT_DENY),
        ("creates a template", ask(p, "ec2:CreateLaunchTemplate", LAUNCH_TEMPLATE, **TRACKED), IMPLICIT_DENY),
        ("tags a template tracked", ask(p, "ec2:CreateTags", LAUNCH_TEMPLATE, **{"aws:TagKeys": ["ami-lifecycle:track"]}),
         IMPLICIT_DENY),
        ("launches an instance", ask(p, "ec2:RunInstances", INSTANCE), IMPLICIT_DENY),
        ("deregisters an image", ask(p, "ec2:DeregisterImage", IMAGE,
                                     **{"aws:ResourceTag/ami-lifecycle:managed-by": "ami-lifecycle"}), IMPLICIT_DENY),
        ("reports", ask(p, "events:PutEvents", f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"), ALLOW),
    ]
    return out


def publish_wrong(identity: dict[str, Any]) -> list[str]:
    return [f"{label}: {decide(req, identity=[identity])} != {want}"
            for label, req, want in publish_scenarios() if decide(req, identity=[identity]) != want]


@pytest.fixture(scope="module")
def publish_role():
    t = load_template(ROOT / "template.yaml")
    return role_identity(t, Resolver(t), "PublishFunction")


def test_publish_writes_only_its_path_and_tracked_templates(publish_role):
    assert publish_wrong(publish_role) == []


def test_publish_scoped_for_any_deployment_name():
    """The path is the stack's DeploymentName, whatever it is."""
    t = load_template(ROOT / "template.yaml")
    role = role_identity(t, Resolver(t, {"DeploymentName": "prod2"}), "PublishFunction")
    p = "PublishFunction"
    assert decide(ask(p, "ssm:PutParameter", parameter("/ami-lifecycle/prod2/web-1/latest")), identity=[role]) == ALLOW
    assert decide(ask(p, "ssm:PutParameter", parameter(LATEST)), identity=[role]) == IMPLICIT_DENY


def _publish_statement(p: dict[str, Any], sid: str) -> dict[str, Any]:
    (stmt,) = [s for s in p["Statement"] if s.get("Sid") == sid]
    return stmt


def _ssm_everywhere(p):
    _publish_statement(p, "LatestImageParameters")["Resource"] = "*"


def _ssm_prefix_without_slash(p):
    stmt = _publish_statement(p, "LatestImageParameters")
    stmt["Resource"] = [r.rstrip("/*") + "*" for r in stmt["Resource"]]


def _ssm_without_the_path_itself(p):
    stmt = _publish_statement(p, "LatestImageParameters")
    stmt["Resource"] = [r for r in stmt["Resource"] if r.endswith("/*")]


def _ssm_may_delete(p):
    _publish_statement(p, "LatestImageParameters")["Action"].append("ssm:DeleteParameter")


def _templates_without_condition(p):
    _publish_statement(p, "FollowTrackedLaunchTemplates").pop("Condition")


def _templates_condition_inverted(p):
    _publish_statement(p, "FollowTrackedLaunchTemplates")["Condition"]["Null"] = {
        "aws:ResourceTag/ami-lifecycle:track": "true"}


def _templates_may_delete_versions(p):
    _publish_statement(p, "FollowTrackedLaunchTemplates")["Action"].append("ec2:DeleteLaunchTemplateVersions")


PUBLISH_BAD_VARIANTS = {
    "SSM on every parameter": _ssm_everywhere,
    "SSM path prefix without its slash": _ssm_prefix_without_slash,
    "SSM without the path itself (GetParametersByPath)": _ssm_without_the_path_itself,
    "publish may delete parameters": _ssm_may_delete,
    "templates without the track-tag condition": _templates_without_condition,
    "templates only WITHOUT the track tag": _templates_condition_inverted,
    "publish may delete template versions": _templates_may_delete_versions,
}


@pytest.mark.parametrize("variant", sorted(PUBLISH_BAD_VARIANTS))
def test_bad_publish_policy_is_caught(publish_role, variant):
    bad = copy.deepcopy(publish_role)
    PUBLISH_BAD_VARIANTS[variant](bad)
    assert bad != publish_role, "the mutation changed nothing"
    assert publish_wrong(bad), f"{variant}: no scenario notices the broken publish policy"


def test_cleanup_reads_published_history_and_writes_none():
    """cleanup keeps the last PUBLISHED_KEEP values of every latest parameter: it reads the
    path and each parameter's history, and may change no parameter."""
    t = load_template(ROOT / "template.yaml")
    cleanup = role_identity(t, Resolver(t), "CleanupFunction")
    c = "CleanupFunction"
    for label, req, want in [
        ("lists the deployment's path", ask(c, "ssm:GetParametersByPath", parameter(PATH)), ALLOW),
        ("reads a parameter's history", ask(c, "ssm:GetParameterHistory", parameter(LATEST)), ALLOW),
        ("reads the history in another region", ask(c, "ssm:GetParameterHistory", parameter(LATEST, "ap-southeast-2")), ALLOW),
        ("lists another deployment's path", ask(c, "ssm:GetParametersByPath", parameter("/ami-lifecycle/prod2")), IMPLICIT_DENY),
        ("history of an application's parameter", ask(c, "ssm:GetParameterHistory", parameter("/app/db-password")),
         IMPLICIT_DENY),
        ("moves latest", ask(c, "ssm:PutParameter", parameter(LATEST)), IMPLICIT_DENY),
        ("deletes the pin", ask(c, "ssm:DeleteParameter", parameter(PINNED)), IMPLICIT_DENY),
        ("moves a label", ask(c, "ssm:LabelParameterVersion", parameter(LATEST)), IMPLICIT_DENY),
        ("reads tracked templates' default versions", ask(c, "ec2:DescribeLaunchTemplateVersions", "*"), ALLOW),
        ("changes a tracked template", ask(c, "ec2:CreateLaunchTemplateVersion", LAUNCH_TEMPLATE, **TRACKED), IMPLICIT_DENY),
    ]:
        assert decide(req, identity=[cleanup]) == want, label


# ----------------------------------------------------------------------------
# The operator's sample policy for amictl rollback / unpin (infra/policies/)
# ----------------------------------------------------------------------------

def operator_policy(deployment: str = "ami-lifecycle") -> dict[str, Any]:
    t = load_template(POLICIES / "operator-publish-policy.yaml")
    r = Resolver(t, {"DeploymentName": deployment, "OperatorRoleName": "ami-lifecycle-operator", "SealKeyArn": SEAL_KEY})
    return r.resolve(t["Resources"]["OperatorPublishPolicy"]["Properties"]["PolicyDocument"])


def op(action: str, resource: str, **ctx: Any) -> Request:
    return Request(action, resource, OPERATOR, {"aws:PrincipalArn": OPERATOR, **ctx})


def operator_scenarios() -> list[tuple[str, Request, str]]:
    return [
        ("dry run: history", op("ssm:GetParameterHistory", parameter(LATEST)), ALLOW),
        ("dry run: every lineage of a region", op("ssm:GetParametersByPath", parameter(PATH)), ALLOW),
        ("dry run: tracked templates", op("ec2:DescribeLaunchTemplateVersions", "*"), ALLOW),
        ("rollback moves latest", op("ssm:PutParameter", parameter(LATEST, "ap-southeast-2")), ALLOW),
        ("rollback writes the pin", op("ssm:PutParameter", parameter(PINNED)), ALLOW),
        ("rollback labels the version", op("ssm:LabelParameterVersion", parameter(LATEST)), ALLOW),
        ("SSM validates the image put back", op("ec2:DescribeImages", "*"), ALLOW),
        ("rollback: a tracked template's new version", op("ec2:CreateLaunchTemplateVersion", LAUNCH_TEMPLATE, **TRACKED), ALLOW),
        ("rollback: a tracked template's default", op("ec2:ModifyLaunchTemplate", LAUNCH_TEMPLATE, **TRACKED), ALLOW),
        ("unpin deletes the pin", op("ssm:DeleteParameter", parameter(PINNED)), ALLOW),
        ("checks the target's seal", op("kms:VerifyMac", SEAL_KEY, **{"kms:MacAlgorithm": "HMAC_SHA_256"}), ALLOW),
        ("unpin never deletes latest", op("ssm:DeleteParameter", parameter(LATEST)), IMPLICIT_DENY),
        ("nor several at once", op("ssm:DeleteParameters", parameter(PINNED)), IMPLICIT_DENY),
        ("another deployment's latest", op("ssm:PutParameter", parameter("/ami-lifecycle/prod2/web-1/latest")), IMPLICIT_DENY),
        ("another deployment's pin", op("ssm:DeleteParameter", parameter("/ami-lifecycle/prod2/web-1/pinned")), IMPLICIT_DENY),
        ("a deployment named like this one", op("ssm:PutParameter", parameter("/ami-lifecycle/ami-lifecycle-2/web-1/latest")),
         IMPLICIT_DENY),
        ("an application's parameter", op("ssm:PutParameter", parameter("/app/db-url")), IMPLICIT_DENY),
        ("an untracked template", op("ec2:CreateLaunchTemplateVersion", LAUNCH_TEMPLATE), IMPLICIT_DENY),
        ("deletes a template version", op("ec2:DeleteLaunchTemplateVersions", LAUNCH_TEMPLATE, **TRACKED), IMPLICIT_DENY),
        ("makes a seal", op("kms:GenerateMac", SEAL_KEY, **{"kms:MacAlgorithm": "HMAC_SHA_256"}), IMPLICIT_DENY),
        ("checks with another algorithm", op("kms:VerifyMac", SEAL_KEY, **{"kms:MacAlgorithm": "HMAC_SHA_512"}), IMPLICIT_DENY),
    ]


def operator_wrong(policy: dict[str, Any]) -> list[str]:
    return [f"{label}: {decide(req, identity=[policy])} != {want}"
            for label, req, want in operator_scenarios() if decide(req, identity=[policy]) != want]


def test_operator_policy_rolls_back_and_unpins_only():
    assert operator_wrong(operator_policy()) == []


def test_operator_policy_follows_the_deployment_name():
    policy = operator_policy("prod2")
    assert decide(op("ssm:DeleteParameter", parameter("/ami-lifecycle/prod2/web-1/pinned")), identity=[policy]) == ALLOW
    assert decide(op("ssm:DeleteParameter", parameter(PINNED)), identity=[policy]) == IMPLICIT_DENY


def test_operator_needs_the_key_policy_too():
    """The sample's VerifyMac is not enough alone: SealKey's policy must name the role
    (OperatorRoleArn); without it the key's explicit Deny wins."""
    req = mac("kms:VerifyMac", OPERATOR)
    for operator, want in (("", EXPLICIT_DENY), (OPERATOR, ALLOW)):
        key_policy, _ = seal_setup(operator)
        assert decide_kms(req, key_policy, [operator_policy()]) == want, operator or "no operator role"


def _unpin_anything(p):
    _publish_statement(p, "Unpin")["Resource"] = _publish_statement(p, "MoveLatestAndPin")["Resource"]


def _templates_untracked(p):
    _publish_statement(p, "RollBackTrackedTemplates").pop("Condition")


def _moves_any_parameter(p):
    _publish_statement(p, "MoveLatestAndPin")["Resource"] = "*"


@pytest.mark.parametrize("variant", ["unpin may delete latest", "any template", "any parameter"])
def test_bad_operator_policy_is_caught(variant):
    good = operator_policy()
    bad = copy.deepcopy(good)
    {"unpin may delete latest": _unpin_anything, "any template": _templates_untracked,
     "any parameter": _moves_any_parameter}[variant](bad)
    assert bad != good, "the mutation changed nothing"
    assert operator_wrong(bad), f"{variant}: no scenario notices the broken operator policy"


# ----------------------------------------------------------------------------
# The operator's sample policy for amictl migrate (infra/policies/, issue 20)
# ----------------------------------------------------------------------------

MIGRATE_POLICY = POLICIES / "operator-migrate-policy.yaml"
REPLICA_KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/2234abcd-12ab-34cd-56ef-1234567890ab"
MANAGED = {"aws:ResourceTag/ami-lifecycle:managed-by": "ami-lifecycle"}
MIGRATED = {"aws:RequestTag/ami-lifecycle:migrated-from": "i-0abcdef1234567890"}
INSTANCE_ROLE = role("app-instance-role")


def migrate_policy(keys: str = f"{KEY},{REPLICA_KEY}", deployment: str = "ami-lifecycle") -> dict[str, Any]:
    t = load_template(MIGRATE_POLICY)
    r = Resolver(t, {"DeploymentName": deployment, "OperatorRoleName": "ami-lifecycle-operator",
                     "SealKeyArn": SEAL_KEY, "KmsKeyArns": keys})
    return r.resolve(t["Resources"]["OperatorMigratePolicy"]["Properties"]["PolicyDocument"])


def ec2(kind: str, rid: str, region: str = "eu-west-1", account: str = ACCOUNT) -> str:
    return f"arn:aws:ec2:{region}:{account}:{kind}/{rid}"


def migrate_scenarios() -> list[tuple[str, Request, str]]:
    via_ec2 = {"kms:ViaService": "ec2.eu-west-1.amazonaws.com"}
    copy_image = "arn:aws:ec2:eu-west-1::image/ami-0fedcba9876543210"
    out = [(f"plan: {a}", op(f"ec2:{a}", "*"), ALLOW)
           for a in ("DescribeInstances", "DescribeVolumes", "DescribeSubnets", "DescribeVpcs", "DescribeSecurityGroups",
                     "DescribeKeyPairs", "DescribePlacementGroups", "DescribeAddresses", "DescribeImages",
                     "DescribeInstanceStatus")]
    out += [
        ("plan: the source's user data", op("ec2:DescribeInstanceAttribute", INSTANCE), ALLOW),
        ("plan: checks a reusable image's seal", op("kms:VerifyMac", SEAL_KEY, **{"kms:MacAlgorithm": "HMAC_SHA_256"}),
         ALLOW),
        ("images the source", op("ec2:CreateImage", INSTANCE), ALLOW),
        ("the image it makes", op("ec2:CreateImage", IMAGE), ALLOW),
        ("the image's snapshots", op("ec2:CreateImage", SNAPSHOT), ALLOW),
        ("tags the image at creation", op("ec2:CreateTags", IMAGE, **{"ec2:CreateAction": "CreateImage"}), ALLOW),
        ("tags its snapshots at creation", op("ec2:CreateTags", SNAPSHOT, **{"ec2:CreateAction": "CreateImage"}), ALLOW),
        ("seals the image at creation", op("kms:GenerateMac", SEAL_KEY, **{"kms:MacAlgorithm": "HMAC_SHA_256"}), ALLOW),
        ("copies the image", op("ec2:CopyImage", copy_image), ALLOW),
        ("the copy's snapshots", op("ec2:CopyImage", "arn:aws:ec2:eu-west-1::snapshot/snap-0fedcba9876543210"), ALLOW),
        ("tags the copy at creation", op("ec2:CreateTags", copy_image, **{"ec2:CreateAction": "CopyImage"}), ALLOW),
        ("checks the target key", op("kms:DescribeKey", REPLICA_KEY), ALLOW),
        *[(f"re-encrypts: {a} through EC2", op(a, REPLICA_KEY, **via_ec2), ALLOW)
          for a in ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                    "kms:GenerateDataKeyWithoutPlaintext")],
        ("the source volumes' key through EC2", op("kms:Decrypt", KEY, **{"kms:ViaService": "ec2.us-east-1.amazonaws.com"}),
         ALLOW),
        ("EBS's grant on the target key", op("kms:CreateGrant", REPLICA_KEY, **via_ec2, **{"kms:GrantIsForAWSResource": "true"}),
         ALLOW),
        ("launches from the managed copy", op("ec2:RunInstances", copy_image, **MANAGED), ALLOW),
        ("launches the instance tagged migrated-from", op("ec2:RunInstances", ec2("instance", "*"), **MIGRATED), ALLOW),
        *[(f"launches into a {kind}", op("ec2:RunInstances", ec2(kind, "x-0abc")), ALLOW)
          for kind in ("subnet", "security-group", "network-interface", "volume", "key-pair", "placement-group")],
        ("tags the instance at launch", op("ec2:CreateTags", ec2("instance", "i-0new"), **{"ec2:CreateAction": "RunInstances"}),
         ALLOW),
        ("tags its volumes at launch", op("ec2:CreateTags", ec2("volume", "vol-0new"), **{"ec2:CreateAction": "RunInstances"}),
         ALLOW),
        ("passes the instance profile's role to EC2", op("iam:PassRole", INSTANCE_ROLE,
                                                         **{"iam:PassedToService": "ec2.amazonaws.com"}), ALLOW),
        ("stops the source", op("ec2:StopInstances", INSTANCE), ALLOW),
        ("moves the Elastic IP", op("ec2:AssociateAddress", ec2("elastic-ip", "eipalloc-0abc")), ALLOW),
        ("to the new instance", op("ec2:AssociateAddress", ec2("instance", "i-0new")), ALLOW),
        # never destroys, never opens, never widens
        ("terminates the source", op("ec2:TerminateInstances", INSTANCE), IMPLICIT_DENY),
        ("deregisters an image", op("ec2:DeregisterImage", IMAGE, **MANAGED), IMPLICIT_DENY),
        ("deletes a snapshot", op("ec2:DeleteSnapshot", SNAPSHOT, **MANAGED), IMPLICIT_DENY),
        ("shares an image", op("ec2:ModifyImageAttribute", IMAGE, **MANAGED), IMPLICIT_DENY),
        ("changes an instance", op("ec2:ModifyInstanceAttribute", INSTANCE), IMPLICIT_DENY),
        ("disassociates an address", op("ec2:DisassociateAddress", ec2("elastic-ip", "eipalloc-0abc")), IMPLICIT_DENY),
        ("releases an address", op("ec2:ReleaseAddress", ec2("elastic-ip", "eipalloc-0abc")), IMPLICIT_DENY),
        ("tags an image after creation", op("ec2:CreateTags", IMAGE, **{"aws:TagKeys": ["Name"]}), IMPLICIT_DENY),
        ("tags a running instance", op("ec2:CreateTags", INSTANCE, **{"aws:TagKeys": ["ami-lifecycle:schedule"]}),
         IMPLICIT_DENY),
        ("deletes tags", op("ec2:DeleteTags", INSTANCE), IMPLICIT_DENY),
        ("launches from an unmanaged image", op("ec2:RunInstances", copy_image), IMPLICIT_DENY),
        ("launches from another deployment's image", op("ec2:RunInstances", copy_image,
                                                         **{"aws:ResourceTag/ami-lifecycle:managed-by": "prod2"}),
         IMPLICIT_DENY),
        ("launches an instance without migrated-from", op("ec2:RunInstances", ec2("instance", "*")), IMPLICIT_DENY),
        ("launches into another account's subnet", op("ec2:RunInstances", ec2("subnet", "subnet-0abc", account="444455556666")),
         IMPLICIT_DENY),
        ("passes a role to Lambda", op("iam:PassRole", INSTANCE_ROLE, **{"iam:PassedToService": "lambda.amazonaws.com"}),
         IMPLICIT_DENY),
        ("passes a role with no service named", op("iam:PassRole", INSTANCE_ROLE), IMPLICIT_DENY),
        ("passes another account's role", op("iam:PassRole", "arn:aws:iam::444455556666:role/x",
                                             **{"iam:PassedToService": "ec2.amazonaws.com"}), IMPLICIT_DENY),
        ("seals with another algorithm", op("kms:GenerateMac", SEAL_KEY, **{"kms:MacAlgorithm": "HMAC_SHA_512"}),
         IMPLICIT_DENY),
        ("schedules the seal key's deletion", op("kms:ScheduleKeyDeletion", SEAL_KEY), IMPLICIT_DENY),
        ("schedules the replica key's deletion", op("kms:ScheduleKeyDeletion", REPLICA_KEY), IMPLICIT_DENY),
        ("decrypts with the target key directly", op("kms:Decrypt", REPLICA_KEY), IMPLICIT_DENY),
        ("decrypts through S3", op("kms:Decrypt", REPLICA_KEY, **{"kms:ViaService": "s3.eu-west-1.amazonaws.com"}),
         IMPLICIT_DENY),
        ("a grant for a person", op("kms:CreateGrant", REPLICA_KEY, **via_ec2, **{"kms:GrantIsForAWSResource": "false"}),
         IMPLICIT_DENY),
        ("an unlisted key through EC2", op("kms:Decrypt", KEY.replace("1234abcd", "9999abcd"), **via_ec2), IMPLICIT_DENY),
        ("grants on an unlisted key", op("kms:CreateGrant", KEY.replace("1234abcd", "9999abcd"), **via_ec2,
                                         **{"kms:GrantIsForAWSResource": "true"}), IMPLICIT_DENY),
    ]
    return out


def migrate_wrong(policy: dict[str, Any]) -> list[str]:
    return [f"{label}: {decide(req, identity=[policy])} != {want}"
            for label, req, want in migrate_scenarios() if decide(req, identity=[policy]) != want]


def test_migrate_policy_allows_the_move_and_nothing_destructive():
    assert migrate_wrong(migrate_policy()) == []


def test_migrate_policy_without_keys_uses_no_kms_but_the_seal():
    policy = migrate_policy(keys="")
    assert not any(s.get("Sid", "").endswith(("VolumeKeys", "KeysThroughEc2Only", "ToEbsOnly")) for s in policy["Statement"])
    via_ec2 = {"kms:ViaService": "ec2.eu-west-1.amazonaws.com"}
    assert decide(op("kms:Decrypt", REPLICA_KEY, **via_ec2), identity=[policy]) == IMPLICIT_DENY
    assert decide(op("kms:DescribeKey", REPLICA_KEY), identity=[policy]) == IMPLICIT_DENY
    assert decide(op("kms:GenerateMac", SEAL_KEY, **{"kms:MacAlgorithm": "HMAC_SHA_256"}), identity=[policy]) == ALLOW


def test_migrate_policy_follows_the_deployment_name():
    policy = migrate_policy(deployment="prod2")
    image = "arn:aws:ec2:eu-west-1::image/ami-0fedcba9876543210"
    prod2 = {"aws:ResourceTag/ami-lifecycle:managed-by": "prod2"}
    assert decide(op("ec2:RunInstances", image, **prod2), identity=[policy]) == ALLOW
    assert decide(op("ec2:RunInstances", image, **MANAGED), identity=[policy]) == IMPLICIT_DENY


def test_migrate_policy_seals_only_as_the_stacks_operator_role():
    """The sample's GenerateMac is not enough alone: SealKey's policy must name the role
    (OperatorRoleArn); without it the key's explicit Deny wins and no image is made."""
    req = mac("kms:GenerateMac", OPERATOR)
    for operator, want in (("", EXPLICIT_DENY), (OPERATOR, ALLOW)):
        key_policy, _ = seal_setup(operator)
        assert decide_kms(req, key_policy, [migrate_policy()]) == want, operator or "no operator role"


def test_migrate_policy_is_linted():
    """infra-check's cfn-lint covers infra/policies/*.yaml, so this file is linted."""
    mk = (ROOT / "infra" / "infra.mk").read_text()
    lines = [line for line in mk.splitlines() if "/cfn-lint " in line and "infra/policies/" in line]
    globs = [w for line in lines for w in line.split() if w.startswith("infra/policies/")]
    assert any(MIGRATE_POLICY in ROOT.glob(g) for g in globs), lines


def _migrate_statement(p: dict[str, Any], sid: str) -> dict[str, Any]:
    return _publish_statement(p, sid)


def _launch_any_image(p):
    _migrate_statement(p, "LaunchFromManagedImages").pop("Condition")


def _launch_without_migrated_from(p):
    _migrate_statement(p, "LaunchMigratedInstances").pop("Condition")


def _pass_role_anywhere(p):
    _migrate_statement(p, "PassInstanceProfileRolesToEc2Only").pop("Condition")


def _tag_anything(p):
    for sid in ("TagImagesOnlyAtCreation", "TagOnlyAtLaunch"):
        _migrate_statement(p, sid).pop("Condition")


def _stop_or_terminate(p):
    _migrate_statement(p, "StopTheSource")["Action"] = ["ec2:StopInstances", "ec2:TerminateInstances"]


def _keys_directly(p):
    _migrate_statement(p, "UseVolumeKeysThroughEc2Only").pop("Condition")


def _grants_for_anyone(p):
    _migrate_statement(p, "GrantVolumeKeysToEbsOnly")["Condition"].pop("Bool")


def _keys_everywhere(p):
    for sid in ("DescribeVolumeKeys", "UseVolumeKeysThroughEc2Only", "GrantVolumeKeysToEbsOnly"):
        _migrate_statement(p, sid)["Resource"] = "*"


MIGRATE_BAD_VARIANTS = {
    "launches from any image": _launch_any_image,
    "launches without migrated-from": _launch_without_migrated_from,
    "passes roles to any service": _pass_role_anywhere,
    "tags outside creation": _tag_anything,
    "may terminate": _stop_or_terminate,
    "keys used directly": _keys_directly,
    "grants for anyone": _grants_for_anyone,
    "every key": _keys_everywhere,
}


@pytest.mark.parametrize("variant", sorted(MIGRATE_BAD_VARIANTS))
def test_bad_migrate_policy_is_caught(variant):
    good = migrate_policy()
    bad = copy.deepcopy(good)
    MIGRATE_BAD_VARIANTS[variant](bad)
    assert bad != good, "the mutation changed nothing"
    assert migrate_wrong(bad), f"{variant}: no scenario notices the broken migrate policy"


# ----------------------------------------------------------------------------
# Quiesce (i17): create-image's SendCommand, only the two documents, only opted-in instances
# ----------------------------------------------------------------------------

def document_arn(name: str, region: str = "eu-west-1", account: str | None = ACCOUNT) -> str:
    """A document's ARN as IAM authorizes it; AWS-owned documents carry no account."""
    return f"arn:aws:ssm:{region}:{account or ''}:document/{name}"


LINUX_DOC = document_arn("ami-lifecycle-quiesce-linux")
VSS_DOC = document_arn("AWSEC2-ManageVssIO", account=None)
QUIESCE_TAG = {"ssm:resourceTag/ami-lifecycle:method": "quiesce"}


def send_command(identity: dict[str, Any], doc: str, instance: str, **tags: str) -> str:
    """SendCommand is authorized against the document and against each target instance
    (whose EC2 tags Systems Manager exposes as ssm:resourceTag/<key>): both must be allowed."""
    c = "CreateImageFunction"
    decisions = {decide(ask(c, "ssm:SendCommand", doc), identity=[identity]),
                 decide(ask(c, "ssm:SendCommand", instance, **tags), identity=[identity])}
    return ALLOW if decisions == {ALLOW} else (EXPLICIT_DENY if EXPLICIT_DENY in decisions else IMPLICIT_DENY)


def quiesce_scenarios() -> list[tuple[str, Callable[[dict[str, Any]], str], str]]:
    c = "CreateImageFunction"
    other_instance = INSTANCE.replace(ACCOUNT, "444455556666")
    reboot_tag = {"ssm:resourceTag/ami-lifecycle:method": "reboot"}

    def via(action: str, resource: str) -> Callable[[dict[str, Any]], str]:
        return lambda identity: decide(ask(c, action, resource), identity=[identity])

    def sc(doc: str, instance: str = INSTANCE, **tags: str) -> Callable[[dict[str, Any]], str]:
        return lambda identity: send_command(identity, doc, instance, **tags)

    return [
        ("freezes a quiesce instance (Linux document)", sc(LINUX_DOC, **QUIESCE_TAG), ALLOW),
        ("in another region", sc(document_arn("ami-lifecycle-quiesce-linux", "ap-southeast-2"),
                                 INSTANCE.replace("us-east-1", "ap-southeast-2"), **QUIESCE_TAG), ALLOW),
        ("freezes a quiesce instance (VSS document)", sc(VSS_DOC, **QUIESCE_TAG), ALLOW),
        ("an untagged instance", sc(LINUX_DOC), IMPLICIT_DENY),
        ("an instance tagged method=reboot", sc(LINUX_DOC, **reboot_tag), IMPLICIT_DENY),
        ("another tag with the value quiesce", sc(LINUX_DOC, **{"ssm:resourceTag/method": "quiesce"}), IMPLICIT_DENY),
        ("another account's quiesce instance", sc(LINUX_DOC, other_instance, **QUIESCE_TAG), IMPLICIT_DENY),
        ("AWS-RunShellScript on a quiesce instance", sc(document_arn("AWS-RunShellScript", account=None), **QUIESCE_TAG),
         IMPLICIT_DENY),
        ("AWS-RunPowerShellScript on a quiesce instance",
         sc(document_arn("AWS-RunPowerShellScript", account=None), **QUIESCE_TAG), IMPLICIT_DENY),
        ("another deployment's document", sc(document_arn("prod2-quiesce-linux"), **QUIESCE_TAG), IMPLICIT_DENY),
        ("a document named like ours", sc(document_arn("ami-lifecycle-quiesce-linux-2"), **QUIESCE_TAG), IMPLICIT_DENY),
        ("a document of that name in another account",
         sc(document_arn("ami-lifecycle-quiesce-linux", account="444455556666"), **QUIESCE_TAG), IMPLICIT_DENY),
        ("a VSS document of that name owned by the account", sc(document_arn("AWSEC2-ManageVssIO"), **QUIESCE_TAG),
         IMPLICIT_DENY),
        ("waits for the command", via("ssm:GetCommandInvocation", "*"), ALLOW),
        ("checks the agent is online", via("ssm:DescribeInstanceInformation", "*"), ALLOW),
        ("cancels a command", via("ssm:CancelCommand", "*"), IMPLICIT_DENY),
        ("starts a session", via("ssm:StartSession", INSTANCE), IMPLICIT_DENY),
    ]


def quiesce_wrong(identity: dict[str, Any]) -> list[str]:
    return [f"{label}: {check(identity)} != {want}" for label, check, want in quiesce_scenarios()
            if check(identity) != want]


@pytest.fixture(scope="module")
def create_image_role():
    t = load_template(ROOT / "template.yaml")
    return role_identity(t, Resolver(t), "CreateImageFunction")


def test_create_image_sends_only_the_quiesce_documents_to_opted_in_instances(create_image_role):
    assert quiesce_wrong(create_image_role) == []


def test_quiesce_document_follows_the_deployment_name():
    t = load_template(ROOT / "template.yaml")
    role = role_identity(t, Resolver(t, {"DeploymentName": "prod2"}), "CreateImageFunction")
    assert send_command(role, document_arn("prod2-quiesce-linux"), INSTANCE, **QUIESCE_TAG) == ALLOW
    assert send_command(role, LINUX_DOC, INSTANCE, **QUIESCE_TAG) == IMPLICIT_DENY


def _instances_without_condition(p):
    _publish_statement(p, "QuiesceOptedInInstances").pop("Condition")


def _one_statement_conditioned(p):
    """Documents and instances in one statement with the tag condition: the document has no
    such tag, so even the good calls fail - a mistake the scenarios must notice too."""
    docs = _publish_statement(p, "QuiesceDocuments")
    inst = _publish_statement(p, "QuiesceOptedInInstances")
    inst["Resource"] = [*docs["Resource"], inst["Resource"]]
    p["Statement"].remove(docs)


def _any_document(p):
    _publish_statement(p, "QuiesceDocuments")["Resource"] = "arn:aws:ssm:*:*:document/*"


def _any_instance_anywhere(p):
    _publish_statement(p, "QuiesceOptedInInstances")["Resource"] = "*"


def _condition_on_any_value(p):
    _publish_statement(p, "QuiesceOptedInInstances")["Condition"] = {
        "StringLike": {"ssm:resourceTag/ami-lifecycle:method": "*"}}


QUIESCE_BAD_VARIANTS = {
    "instances without the opt-in condition": _instances_without_condition,
    "documents under the instance condition": _one_statement_conditioned,
    "any document": _any_document,
    "any resource": _any_instance_anywhere,
    "any method value": _condition_on_any_value,
}


@pytest.mark.parametrize("variant", sorted(QUIESCE_BAD_VARIANTS))
def test_bad_quiesce_policy_is_caught(create_image_role, variant):
    bad = copy.deepcopy(create_image_role)
    QUIESCE_BAD_VARIANTS[variant](bad)
    assert bad != create_image_role, "the mutation changed nothing"
    assert quiesce_wrong(bad), f"{variant}: no scenario notices the broken quiesce statements"
