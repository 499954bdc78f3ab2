"""`SHARE_ALLOWED=org` (issue 18): the share function reads its allow-list from Organizations
on every run (shared/src/share/allowed.rs), Accounts set or not, so its role gets exactly those
read calls when ShareAllowed names `org`, and not otherwise.

* The `ShareAllowsOrg` condition (CloudFormation has no "contains": the value wrapped in commas,
  split on ",org," and re-joined) holds exactly when an entry of the value is `org`, as
  `AllowList::parse` (shared/src/share_target.rs) decides, for values the parameter's
  AllowedPattern accepts: an organization ARN ("organizations") or an id holding "org" does
  not make it hold.
* Drift: the Organizations calls `resolve` makes (its `org.<method>()` calls, mapped through
  shared/src/aws/organizations.rs to SDK calls) are exactly the policy's actions.
* Evaluated with `policy_eval.decide`: with ShareAllowed=org and Accounts empty, share may make
  those calls and no other Organizations call, and no other function gets them; with explicit
  entries and Accounts empty, share may not. A deliberately broken variant is caught.

Run: make pattern-test  (or .venv/tools/bin/pytest infra/tests/test_share_allowed_org.py)
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from policy_eval import ALLOW, IMPLICIT_DENY, Request, decide
from test_event_patterns import Resolver, load_template
from test_policies import SUITE, role_identity

ROOT = Path(__file__).resolve().parents[2]
ORG_ARN = "arn:aws:organizations::111122223333:organization/o-abcdefghij"
OU_ARN = "arn:aws:organizations::111122223333:ou/o-abcdefghij/ou-ab12-cdefghij"
# An OU ARN whose organization and OU ids hold "org": must not count as `org`.
ORGISH_OU = "arn:aws:organizations::111122223333:ou/o-orgorgorg1/ou-org1-orgorgor"
NOT_USED = ["organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent",
            "organizations:ListRoots", "organizations:DescribeAccount", "organizations:CreateAccount",
            "organizations:MoveAccount", "organizations:LeaveOrganization", "organizations:TagResource"]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def allow_list_calls() -> set[str]:
    """IAM actions of the Organizations calls `share::allowed::resolve` makes."""
    allowed = (ROOT / "shared" / "src" / "share" / "allowed.rs").read_text()
    methods = set(re.findall(r"\borg\.([a-z_]+)\(\)", allowed))
    assert methods, "no org.<method>() call found in allowed.rs: has the adapter been renamed?"
    src = (ROOT / "shared" / "src" / "aws" / "organizations.rs").read_text()
    bodies = dict(re.findall(r"async fn ([a-z_]+)\(&self[^)]*\)[^{]*\{(.*?)\n    \}\n", src, re.S))
    calls: set[str] = set()
    for m in sorted(methods):
        assert m in bodies, f"Organization::{m} not found in organizations.rs"
        sdk = re.findall(r"\.client\s*\.([a-z_]+)\(\)", bodies[m])
        assert sdk, f"Organization::{m} makes no SDK call?"
        calls |= {"organizations:" + "".join(w.capitalize() for w in c.split("_")) for c in sdk}
    return calls


def rust_names_org(value: str) -> bool:
    """AllowList::parse: entries split on commas and whitespace; `org` exactly."""
    return "org" in re.split(r"[,\s]+", value)


def identity(template: dict[str, Any], fn: str, overrides: dict[str, str]) -> dict[str, Any]:
    return role_identity(template, Resolver(template, overrides), fn)


def ask(fn: str, action: str) -> Request:
    return Request(action, "*", SUITE[fn], {"aws:PrincipalArn": SUITE[fn]})


def test_the_calls_are_describe_organization_and_list_accounts():
    assert allow_list_calls() == {"organizations:DescribeOrganization", "organizations:ListAccounts"}


@pytest.mark.parametrize("value", [
    "", "org", "111122223333", "111122223333,org", "org,111122223333", f"{OU_ARN},org,{ORG_ARN}",
    ORG_ARN, OU_ARN, ORGISH_OU, f"{ORGISH_OU},111122223333", f"{ORGISH_OU},org",
])
def test_condition_holds_exactly_when_an_entry_is_org(template, value):
    pattern = template["Parameters"]["ShareAllowed"]["AllowedPattern"]
    assert re.fullmatch(pattern, value), f"the parameter accepts {value!r}"
    r = Resolver(template, {"ShareAllowed": value})
    assert r.condition("ShareAllowsOrg") == rust_names_org(value), value


def share_wrong(policy: dict[str, Any]) -> list[str]:
    """Wrong decisions for share with `org`: the allow-list's calls allowed, the rest not."""
    out = [f"{a}: not allowed" for a in sorted(allow_list_calls())
           if decide(ask("ShareFunction", a), identity=[policy]) != ALLOW]
    return out + [f"{a}: allowed" for a in NOT_USED if decide(ask("ShareFunction", a), identity=[policy]) != IMPLICIT_DENY]


def test_share_reads_the_organization_with_org_and_no_accounts(template):
    for value in ("org", "111122223333,org", f"org,{OU_ARN}"):
        overrides = {"ShareAllowed": value, "Accounts": ""}
        assert share_wrong(identity(template, "ShareFunction", overrides)) == [], value
        for fn in sorted(set(SUITE) - {"ShareFunction"}):
            other = identity(template, fn, overrides)
            for action in sorted(allow_list_calls()) + NOT_USED:
                assert decide(ask(fn, action), identity=[other]) == IMPLICIT_DENY, (fn, value, action)


@pytest.mark.parametrize("value", ["", "111122223333", f"111122223333,{ORG_ARN}", OU_ARN, ORGISH_OU])
def test_share_cannot_read_the_organization_without_org(template, value):
    share = identity(template, "ShareFunction", {"ShareAllowed": value, "Accounts": ""})
    for action in sorted(allow_list_calls()) + NOT_USED:
        assert decide(ask("ShareFunction", action), identity=[share]) == IMPLICIT_DENY, (value, action)


def test_policy_is_created_only_with_org(template):
    res = template["Resources"]["ShareOrganizationAllowListPolicy"]
    assert res["Condition"] == "ShareAllowsOrg"
    assert res["Properties"]["Roles"] == [{"Ref": "ShareFunctionRole"}], "share's hub role only, not the spoke's"
    spoke = (ROOT / "infra" / "spoke-role.yaml").read_text()
    assert "DescribeOrganization" not in spoke, "the hub reads the organization with its own credentials"


@pytest.mark.parametrize("actions", [
    ["organizations:Describe*", "organizations:List*"],  # every Organizations read
    ["organizations:DescribeOrganization"],  # ListAccounts missing: org would admit nobody
], ids=["too broad", "too narrow"])
def test_broken_policy_is_caught(template, actions):
    r = Resolver(template, {"ShareAllowed": "org"})
    doc = r.resolve(template["Resources"]["ShareOrganizationAllowListPolicy"]["Properties"]["PolicyDocument"])
    assert share_wrong(doc) == []
    bad = copy.deepcopy(doc)
    bad["Statement"][0]["Action"] = actions
    assert share_wrong(bad) != []
