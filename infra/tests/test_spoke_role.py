"""The spoke roles (infra/spoke-role.yaml, issue 18): who may assume them, and that they grant
what the hub's functions have - no more, no less.

* Trust, evaluated with `policy_eval.decide_assume_role` for sample AssumeRole requests: a hub
  function role (under the RolePath /ami-lifecycle/<DeploymentName>/) with the right external id
  gets in; another account's role, the hub's other roles (outside the path, another deployment's
  path, the root user), a missing or wrong external id do not. Deliberately broken trust
  policies must get at least one decision wrong.
* Drift: each spoke role's statements equal, by Sid, the statements of the matching function's
  Policies in template.yaml (Effect, Action, Resource, Condition; an Fn::If policy under the
  same condition, except `HasAccounts`, which always holds where a spoke role exists), except
  the statements only the hub needs (HUB_ONLY).
* The hub's roles really get the path the spoke trusts (SAM's own transform of template.yaml).

Run: make pattern-test  (or .venv/tools/bin/pytest infra/tests/test_spoke_role.py)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from policy_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, decide, decide_assume_role
from test_event_patterns import Resolver, load_template

ROOT = Path(__file__).resolve().parents[2]
HUB, SPOKE_ACCOUNT, OTHER = "111122223333", "444455556666", "777788889999"
EXTERNAL_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

# template.yaml function -> spoke role name suffix (the contract: <DeploymentName>-spoke-<function>)
FUNCTIONS = {"CreateImageFunction": "create-image", "ReplicateFunction": "replicate", "ShareFunction": "share",
             "CleanupFunction": "cleanup", "PublishFunction": "publish"}
SPOKE_ROLES = {"CreateImageFunction": "CreateImageSpokeRole", "ReplicateFunction": "ReplicateSpokeRole",
               "ShareFunction": "ShareSpokeRole", "CleanupFunction": "CleanupSpokeRole",
               "PublishFunction": "PublishSpokeRole"}
# Statements the hub does with its own credentials in its own account, never in a spoke: run
# reports on the hub's bus, the hub's continuation queue. (The seal policies are separate
# AWS::IAM::Policy resources on the hub's roles, not function Policies.)
HUB_ONLY = {"PublishReports", "SendContinuation", "ReceiveContinuation"}
# Hub conditions that always hold where a spoke role exists: a spoke stack only serves a hub with
# Accounts set, so a hub policy under `Fn::If HasAccounts` (the use checks' image usage reports)
# is unconditional in the spoke role.
ALWAYS_IN_A_SPOKE = {"HasAccounts"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def spoke() -> dict[str, Any]:
    return load_template(ROOT / "infra" / "spoke-role.yaml")


def hub_role(fn: str, deployment: str = "ami-lifecycle", account: str = HUB) -> str:
    """The ARN CloudFormation gives a hub function's role: <stack>-<Function>Role-<suffix> under the RolePath."""
    return f"arn:aws:iam::{account}:role/ami-lifecycle/{deployment}/ami-lifecycle-{fn}Role-1A2B3C4D5E6F"


def spoke_role_arn(fn: str, deployment: str = "ami-lifecycle") -> str:
    return f"arn:aws:iam::{SPOKE_ACCOUNT}:role/ami-lifecycle/{deployment}-spoke-{FUNCTIONS[fn]}"


def trust_of(spoke: dict[str, Any], fn: str, deployment: str = "ami-lifecycle") -> dict[str, Any]:
    r = Resolver(spoke, {"DeploymentName": deployment, "HubAccountId": HUB, "ExternalId": EXTERNAL_ID})
    return r.resolve(spoke["Resources"][SPOKE_ROLES[fn]]["Properties"]["AssumeRolePolicyDocument"])


# What the hub's function roles will carry (the i18 contract): sts:AssumeRole on the spoke roles.
HUB_ASSUME = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                             "Resource": "arn:aws:iam::*:role/ami-lifecycle/ami-lifecycle-spoke*"}]}
ADMIN = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def assume(principal: str, target: str, external_id: str | None = EXTERNAL_ID) -> Request:
    ctx: dict[str, Any] = {"aws:PrincipalArn": principal}
    if external_id is not None:
        ctx["sts:ExternalId"] = external_id
    return Request("sts:AssumeRole", target, principal, ctx)


def trust_scenarios(fn: str) -> list[tuple[str, Request, list[dict[str, Any]], str]]:
    target = spoke_role_arn(fn)
    own = hub_role(fn)
    return [
        ("the hub function's role with the external id", assume(own, target), [HUB_ASSUME], ALLOW),
        ("another hub function's role (same path) with the external id",
         assume(hub_role("ShareFunction" if fn != "ShareFunction" else "CleanupFunction"), target), [HUB_ASSUME], ALLOW),
        ("the hub function's role without an external id", assume(own, target, None), [HUB_ASSUME], IMPLICIT_DENY),
        ("the hub function's role with a wrong external id", assume(own, target, "0f1e2d3c4b5a6978-wrong"),
         [HUB_ASSUME], IMPLICIT_DENY),
        ("the external id in another case", assume(own, target, EXTERNAL_ID.upper()), [HUB_ASSUME], IMPLICIT_DENY),
        ("an empty external id", assume(own, target, ""), [HUB_ASSUME], IMPLICIT_DENY),
        ("the hub role whose own policy does not allow it", assume(own, target), [], IMPLICIT_DENY),
        ("the same path and name in another account", assume(hub_role(fn, account=OTHER), target), [ADMIN],
         IMPLICIT_DENY),
        ("a hub admin role outside the path", assume(f"arn:aws:iam::{HUB}:role/admin", target), [ADMIN], IMPLICIT_DENY),
        ("the hub function's role name without the path",
         assume(f"arn:aws:iam::{HUB}:role/ami-lifecycle-{fn}Role-1A2B3C4D5E6F", target), [ADMIN], IMPLICIT_DENY),
        ("a hub role directly under /ami-lifecycle/ (not the deployment's path)",
         assume(f"arn:aws:iam::{HUB}:role/ami-lifecycle/ami-lifecycle-operator", target), [ADMIN], IMPLICIT_DENY),
        ("another deployment whose name starts with this one's", assume(hub_role(fn, "ami-lifecycle-dev"), target),
         [ADMIN], IMPLICIT_DENY),
        ("a hub user under the path", assume(f"arn:aws:iam::{HUB}:user/ami-lifecycle/ami-lifecycle/x", target),
         [ADMIN], IMPLICIT_DENY),
        ("the hub account's root user", assume(f"arn:aws:iam::{HUB}:root", target), [ADMIN], IMPLICIT_DENY),
        ("a role of the spoke account itself under the path",
         assume(hub_role(fn, account=SPOKE_ACCOUNT), target), [ADMIN], IMPLICIT_DENY),
    ]


def trust_wrong(trust: dict[str, Any], fn: str) -> list[str]:
    return [label for label, req, identity, want in trust_scenarios(fn)
            if decide_assume_role(req, trust, identity) != want]


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_spoke_trusts_only_hub_function_roles_with_the_external_id(spoke, fn):
    assert trust_wrong(trust_of(spoke, fn), fn) == []


def test_spoke_trust_follows_the_deployment_name(spoke):
    trust = trust_of(spoke, "CleanupFunction", "prod2")
    target = spoke_role_arn("CleanupFunction", "prod2")
    assert decide_assume_role(assume(hub_role("CleanupFunction", "prod2"), target), trust, [ADMIN]) == ALLOW
    assert decide_assume_role(assume(hub_role("CleanupFunction"), target), trust, [ADMIN]) == IMPLICIT_DENY


def _statement(p: dict[str, Any]) -> dict[str, Any]:
    [s] = p["Statement"]
    return s


def _no_external_id(p):
    del _statement(p)["Condition"]["StringEquals"]


def _no_principal_arn(p):
    del _statement(p)["Condition"]["ArnLike"]


def _any_account(p):
    # Principal "*" alone is still fenced by aws:PrincipalArn, which names the hub account (the
    # guard forbids it anyway); with the account left open in the ARN too, any account gets in.
    st = _statement(p)
    st["Principal"] = {"AWS": "*"}
    st["Condition"]["ArnLike"]["aws:PrincipalArn"] = "arn:aws:iam::*:role/ami-lifecycle/ami-lifecycle/*"


def _path_without_trailing_slash(p):
    c = _statement(p)["Condition"]["ArnLike"]
    c["aws:PrincipalArn"] = c["aws:PrincipalArn"].removesuffix("/*") + "*"


def _whole_ami_lifecycle_path(p):
    _statement(p)["Condition"]["ArnLike"]["aws:PrincipalArn"] = f"arn:aws:iam::{HUB}:role/ami-lifecycle/*"


def _external_id_as_pattern(p):
    c = _statement(p)["Condition"]
    c["StringLike"] = {"sts:ExternalId": "*"}
    del c["StringEquals"]


@pytest.mark.parametrize("variant", [_no_external_id, _no_principal_arn, _any_account,
                                     _path_without_trailing_slash, _whole_ami_lifecycle_path,
                                     _external_id_as_pattern])
def test_bad_spoke_trust_is_caught(spoke, variant):
    trust = copy.deepcopy(trust_of(spoke, "CleanupFunction"))
    variant(trust)
    assert trust_wrong(trust, "CleanupFunction") != [], f"{variant.__name__} went unnoticed"


def test_spoke_roles_are_named_and_bounded_as_the_contract_says(spoke):
    roles = {k: v for k, v in spoke["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert set(roles) == set(SPOKE_ROLES.values())
    r = Resolver(spoke, {"DeploymentName": "prod2", "HubAccountId": HUB, "ExternalId": EXTERNAL_ID})
    for fn, logical in SPOKE_ROLES.items():
        props = roles[logical]["Properties"]
        assert r.resolve(props["RoleName"]) == f"prod2-spoke-{FUNCTIONS[fn]}"
        assert props["Path"] == "/ami-lifecycle/"
        assert props["MaxSessionDuration"] == 3600
        assert "ManagedPolicyArns" not in props
        assert spoke["Outputs"][f"{logical}Arn"]["Value"] == {"Fn::GetAtt": [logical, "Arn"]}
    ext = spoke["Parameters"]["ExternalId"]
    assert (ext["NoEcho"], ext["MinLength"], ext["MaxLength"]) == (True, 16, 128)


# ----------------------------------------------------------------------------
# Drift: the spoke's statements are the hub function's statements
# ----------------------------------------------------------------------------

def hub_statements(template: dict[str, Any], fn: str) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """Sid -> (the condition gating it or None, the raw statement) of a function's SAM Policies."""
    out: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for p in template["Resources"][fn]["Properties"]["Policies"]:
        if "Fn::If" in p:
            cond, yes, no = p["Fn::If"]
            assert no == {"Ref": "AWS::NoValue"}, (fn, cond)
            gated = [(cond, s) for s in yes["Statement"]]
        else:
            gated = [(None, s) for s in p["Statement"]]
        for cond, s in gated:
            assert s["Sid"] not in out, f"{fn}: Sid {s['Sid']} twice"
            out[s["Sid"]] = (cond, s)
    return out


def spoke_statements(spoke: dict[str, Any], fn: str) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """Sid -> (the condition of the policy carrying it or None, the raw statement) of a spoke role."""
    logical = SPOKE_ROLES[fn]
    out: dict[str, tuple[str | None, dict[str, Any]]] = {}
    docs = [(None, p["PolicyDocument"]) for p in spoke["Resources"][logical]["Properties"]["Policies"]]
    for v in spoke["Resources"].values():
        if v["Type"] == "AWS::IAM::Policy" and {"Ref": logical} in v["Properties"]["Roles"]:
            docs.append((v.get("Condition"), v["Properties"]["PolicyDocument"]))
    for cond, doc in docs:
        for s in doc["Statement"]:
            assert s["Sid"] not in out, f"{logical}: Sid {s['Sid']} twice"
            out[s["Sid"]] = (cond, s)
    return out


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_spoke_policy_equals_the_hub_function_policy(template, spoke, fn):
    hub, sp = hub_statements(template, fn), spoke_statements(spoke, fn)
    assert set(hub) - set(sp) <= HUB_ONLY, f"{fn}: missing in the spoke role: {sorted(set(hub) - set(sp) - HUB_ONLY)}"
    assert set(sp) <= set(hub) - HUB_ONLY, f"{fn}: the spoke role grants more: {sorted(set(sp) - (set(hub) - HUB_ONLY))}"
    for sid, (cond, stmt) in sp.items():
        hub_cond, hub_stmt = hub[sid]
        assert (cond, stmt) == (None if hub_cond in ALWAYS_IN_A_SPOKE else hub_cond, hub_stmt), \
            f"{fn}: statement {sid} differs from template.yaml"


def test_always_in_a_spoke_conditions_are_the_accounts_gate(template, spoke):
    """What ALWAYS_IN_A_SPOKE drops is exactly "Accounts is set", and the spoke template has no
    such condition of its own (its statements under it would then be conditional twice)."""
    assert {c: template["Conditions"][c] for c in ALWAYS_IN_A_SPOKE} == \
        {"HasAccounts": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Accounts"}, ""]}]}}
    assert not ALWAYS_IN_A_SPOKE & set(spoke["Conditions"])


def test_hub_only_statements_exist_and_stay_in_the_hub(template):
    """The exclusions name real statements, each about the hub's own resources."""
    seen = {sid for fn in FUNCTIONS for sid in hub_statements(template, fn)}
    assert HUB_ONLY <= seen
    for fn in FUNCTIONS:
        for sid, (_, s) in hub_statements(template, fn).items():
            if sid in HUB_ONLY:
                assert s["Action"] == "events:PutEvents" or s["Resource"] == {"Fn::GetAtt": ["ContinuationQueue", "Arn"]}, sid


def test_spoke_parameters_and_conditions_match_the_hub(template, spoke):
    """What the mirrored statements refer to means the same in both templates."""
    for name in ("DeploymentName", "KmsKeyArns", "AllowPublic"):
        hub_p = {k: v for k, v in template["Parameters"][name].items() if k != "Description"}
        spoke_p = {k: v for k, v in spoke["Parameters"][name].items() if k != "Description"}
        assert spoke_p == hub_p, name
    for name in spoke["Conditions"]:
        assert spoke["Conditions"][name] == template["Conditions"][name], name


# ----------------------------------------------------------------------------
# Least privilege per function, inside a spoke account
# ----------------------------------------------------------------------------

IMAGE = "arn:aws:ec2:eu-west-1::image/ami-0abcdef1234567890"
MANAGED = {"aws:ResourceTag/ami-lifecycle:managed-by": "ami-lifecycle"}


def spoke_identity(spoke: dict[str, Any], fn: str) -> dict[str, Any]:
    r = Resolver(spoke, {"HubAccountId": HUB, "ExternalId": EXTERNAL_ID})
    return {"Statement": [r.resolve(s) for _, s in spoke_statements(spoke, fn).values()]}


@pytest.mark.parametrize("fn, action, want", [
    ("CleanupFunction", "ec2:DeregisterImage", ALLOW),
    ("CleanupFunction", "ec2:ModifyImageAttribute", IMPLICIT_DENY),
    ("ShareFunction", "ec2:ModifyImageAttribute", ALLOW),
    ("ShareFunction", "ec2:DeregisterImage", IMPLICIT_DENY),
    ("PublishFunction", "ec2:DeregisterImage", IMPLICIT_DENY),
    ("ReplicateFunction", "ec2:DeregisterImage", ALLOW),
    ("CreateImageFunction", "ec2:ModifyImageAttribute", IMPLICIT_DENY),
])
def test_each_spoke_role_keeps_its_function_s_privileges(spoke, fn, action, want):
    principal = spoke_role_arn(fn)
    managed = Request(action, IMAGE, principal, {"aws:PrincipalArn": principal, **MANAGED})
    assert decide(managed, identity=[spoke_identity(spoke, fn)]) == want
    unmanaged = Request(action, IMAGE, principal, {"aws:PrincipalArn": principal,
                                                   "aws:ResourceTag/ami-lifecycle:managed-by": "someone-else"})
    assert decide(unmanaged, identity=[spoke_identity(spoke, fn)]) == IMPLICIT_DENY


def test_no_spoke_role_reports_or_continues(spoke):
    for fn in FUNCTIONS:
        identity = spoke_identity(spoke, fn)
        principal = spoke_role_arn(fn)
        for action, resource in [("events:PutEvents", f"arn:aws:events:us-east-1:{SPOKE_ACCOUNT}:event-bus/default"),
                                 ("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{SPOKE_ACCOUNT}:ami-lifecycle-continuation"),
                                 ("kms:GenerateMac", f"arn:aws:kms:us-east-1:{SPOKE_ACCOUNT}:key/1234abcd")]:
            req = Request(action, resource, principal, {"aws:PrincipalArn": principal})
            assert decide(req, identity=[identity]) == IMPLICIT_DENY, (fn, action)


# ----------------------------------------------------------------------------
# The hub's roles carry the path the spoke trusts (SAM's transform of template.yaml)
# ----------------------------------------------------------------------------

def test_hub_function_roles_get_the_path_the_spoke_trusts(template, spoke, monkeypatch):
    transform = pytest.importorskip("samtranslator.translator.transform").transform
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    t = copy.deepcopy(template)
    for v in t["Resources"].values():
        if v["Type"] == "AWS::Serverless::Function":
            v["Properties"]["CodeUri"] = "s3://bucket/code.zip"  # sam build's job; the transform wants S3

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    out = transform(t, {}, NoManagedPolicies())
    paths = {k: v["Properties"].get("Path") for k, v in out["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert paths == {f"{fn}Role": {"Fn::Sub": "/ami-lifecycle/${DeploymentName}/"} for fn in FUNCTIONS}
    trusted = spoke["Resources"]["CleanupSpokeRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    pattern = trusted["Condition"]["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"]
    assert pattern == "arn:${AWS::Partition}:iam::${HubAccountId}:role" + "/ami-lifecycle/${DeploymentName}/" + "*"


def test_spoke_policies_fit_iam_size_limits(spoke):
    """IAM quotas, at the longest parameter values: a role's inline policies together at most
    10,240 characters, a trust policy at most 2,048 (the default quota; whitespace not counted)."""
    longest = {"DeploymentName": "a" * 32, "HubAccountId": HUB, "ExternalId": "x" * 128,
               "KmsKeyArns": ",".join([f"arn:aws:kms:us-east-1:{SPOKE_ACCOUNT}:key/{'1' * 36}"] * 10)}
    r = Resolver(spoke, longest)

    def size(doc: dict[str, Any]) -> int:
        return len(json.dumps(r.resolve(doc), separators=(",", ":")))

    for logical in SPOKE_ROLES.values():
        props = spoke["Resources"][logical]["Properties"]
        inline = sum(size(p["PolicyDocument"]) for p in props["Policies"])
        inline += sum(size(v["Properties"]["PolicyDocument"]) for v in spoke["Resources"].values()
                      if v["Type"] == "AWS::IAM::Policy" and {"Ref": logical} in v["Properties"]["Roles"])
        assert 0 < inline <= 10240, (logical, inline)
        assert size(props["AssumeRolePolicyDocument"]) <= 2048, logical
