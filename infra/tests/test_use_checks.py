"""Cross-account use checks (issue 18): the IAM side of shared/src/cleanup/usage_check.rs.

Before share revokes a grant, or cleanup (CLEANUP_SHARED=true) disables or deletes a shared image,
the accounts the image is shared with are asked whether they use it, only when `Accounts` is set
(`usage::enabled`). Two ways, each through a known role:

* an account the hub can reach: `DescribeImageReferences` (and, where the endpoint lacks it, the
  scan of shared/src/aws/references.rs and ssm.rs) in that account, through the RUNNING function's
  own spoke role (`UsageCheck::new(ctx, FUNCTION, ..)`, then `for_account(account, self.function)`:
  cleanup through `-spoke-cleanup`, share through `-spoke-share`), assumed by its hub role;
* any other grantee: EC2 image usage reports (shared/src/aws/usage_reports.rs) made in the image
  owner's account with the running function's own credentials - the hub role of cleanup or share
  in the hub, their spoke role in a spoke.

What is checked, with `policy_eval.decide` on sample requests:

* Drift: every SDK call of usage_reports.rs (and of the reference check) maps to known IAM
  actions and resources; a call that is not in the table fails until it is added here and to the
  templates (shown on a copy of the source with one more call).
* Each role that makes the calls may: CreateImageUsageReport on a managed image and on a report
  of its own account (the action authorizes both resources, Service Authorization Reference),
  the two Describe calls on "*" (they support no resource type). Nothing more: not an unmanaged
  image, not another account's report, no DeleteImageUsageReport, no tagging of the report.
* The other functions' roles (hub and spoke) and the hub roles without `Accounts` may not.
* The functions that make checks are read from the source: every `UsageCheck::new(` in
  shared/src names its module's FUNCTION (a new caller, or one passing something else, fails).
* Each checking function's spoke role may make every reference call (and the Image Builder reads
  EC2 makes for DescribeImageReferences, only through EC2), nothing that writes; share's hub
  role only with `Accounts`. Each spoke role is entered by its own function's hub role only
  (spoke trust AND hub identity): share's never gets into cleanup's (deregister/delete).
* Deliberately broken statements get at least one decision wrong.

Run: make pattern-test  (or .venv/tools/bin/pytest infra/tests/test_use_checks.py)
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from policy_eval import ALLOW, IMPLICIT_DENY, Request, decide, decide_assume_role
from test_event_patterns import Resolver, load_template
from test_many_accounts import EXTERNAL_ID, HUB, MANY, in_org, prefix, spoke_role
from test_policies import ACCOUNT, SPOKE_NAMES, SUITE, role_identity
from test_spoke_role import spoke_identity

ROOT = Path(__file__).resolve().parents[2]
RUST_SRC = ROOT / "shared" / "src"
AWS_SRC = RUST_SRC / "aws"
USAGE_CHECK = RUST_SRC / "cleanup" / "usage_check.rs"

REGION = "eu-west-1"
OTHER_ACCOUNT = "999988887777"
IMAGE = f"arn:aws:ec2:{REGION}::image/ami-0abcdef1234567890"
REPORT = f"arn:aws:ec2:{REGION}:{ACCOUNT}:image-usage-report/amiur-0abcdef1234567890"
OTHER_REPORT = REPORT.replace(ACCOUNT, OTHER_ACCOUNT)
MANAGED = {"aws:ResourceTag/ami-lifecycle:managed-by": "ami-lifecycle"}

# SDK operation (snake case, as `.client.<op>()` calls it) -> the IAM requests it makes:
# (action, resource, extra context). CreateImageUsageReport is authorized on the image AND on the
# report it creates; the image request carries the image's tags, the report's none.
USAGE_REPORT_CALLS: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "create_image_usage_report": [("ec2:CreateImageUsageReport", IMAGE, MANAGED),
                                  ("ec2:CreateImageUsageReport", REPORT, {})],
    "describe_image_usage_reports": [("ec2:DescribeImageUsageReports", "*", {})],
    "describe_image_usage_report_entries": [("ec2:DescribeImageUsageReportEntries", "*", {})],
}
# The reference check (references.rs; ssm.rs is only the scan's SSM side). All List actions
# without a resource type: "*".
REFERENCE_CALLS: dict[str, str] = {
    "describe_image_references": "ec2:DescribeImageReferences",
    "describe_launch_templates": "ec2:DescribeLaunchTemplates",
    "describe_launch_template_versions": "ec2:DescribeLaunchTemplateVersions",
    "describe_instances": "ec2:DescribeInstances",  # through AwsEc2::describe_instances (ec2.rs)
    "describe_parameters": "ssm:DescribeParameters",
    "get_parameters": "ssm:GetParameters",
}
# What EC2 reads, with the caller's permissions, for each resource type DescribeImageReferences is
# asked about (`ImageReferenceResourceType::*` in references.rs; the set of the AWS managed policy
# AmazonEC2ImageReferencesAccessPolicy). The Image Builder reads happen only through EC2
# (aws:CalledVia ec2-images.amazonaws.com): the scan does not make them.
REFERENCE_TYPES: dict[str, list[str]] = {
    "Ec2Instance": ["ec2:DescribeInstances"],
    "Ec2LaunchTemplate": ["ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions"],
    "SsmParameter": ["ssm:DescribeParameters", "ssm:GetParameters"],
    "ImageBuilderImageRecipe": ["imagebuilder:ListImageRecipes"],
    "ImageBuilderContainerRecipe": ["imagebuilder:ListContainerRecipes", "imagebuilder:GetContainerRecipe"],
}
THROUGH_EC2 = {"aws:CalledVia": ["ec2-images.amazonaws.com"]}
MAKERS = ("CleanupFunction", "ShareFunction")  # the functions whose runs check use


def sdk_calls(src: str) -> set[str]:
    return set(re.findall(r"\.client\s*\.([a-z_]+)\(\)", src))


def unknown(calls: set[str], known: dict[str, Any]) -> set[str]:
    return calls - set(known)


def usage_report_calls() -> set[str]:
    calls = sdk_calls((AWS_SRC / "usage_reports.rs").read_text())
    assert calls, "no SDK call found in usage_reports.rs: has the client field been renamed?"
    return calls


def reference_calls() -> set[str]:
    refs = (AWS_SRC / "references.rs").read_text()
    calls = sdk_calls(refs) | sdk_calls((AWS_SRC / "ssm.rs").read_text())
    if "self.describe_instances(" in refs:  # the scan's instances, through ec2.rs's helper
        calls.add("describe_instances")
    assert "describe_image_references" in calls, "the reference check no longer calls DescribeImageReferences?"
    return calls


def reference_types() -> set[str]:
    types = set(re.findall(r"ImageReferenceResourceType::([A-Za-z0-9]+)", (AWS_SRC / "references.rs").read_text()))
    assert types, "no ImageReferenceResourceType found in references.rs: has reference_types moved?"
    return types


FUNCTION_CONST = re.compile(r'pub const FUNCTION: &str = "([a-z-]+)";')
CALL = re.compile(r"UsageCheck::new\(\s*&?\w+\s*,\s*(FUNCTION|\"[a-z-]+\")\s*,")


def function_of(rs: Path, arg: str) -> str:
    """The function name a caller passes: a literal, or its module's FUNCTION (the file's own, or
    the mod.rs of its directory it `use`s)."""
    if arg.startswith('"'):
        return arg.strip('"')
    for f in (rs, rs.parent / "mod.rs"):
        m = FUNCTION_CONST.search(f.read_text()) if f.exists() else None
        if m:
            return m.group(1)
    raise AssertionError(f"{rs.relative_to(ROOT)}: FUNCTION passed to UsageCheck::new but defined neither there nor in mod.rs")


def checking_functions() -> dict[str, str]:
    """template.yaml function -> the file that starts its use checks: every `UsageCheck::new(` in
    shared/src (comments aside), each naming the function whose spoke role its checks go through."""
    out: dict[str, str] = {}
    for rs in sorted(RUST_SRC.rglob("*.rs")):
        for line in rs.read_text().splitlines():
            code = line.split("//", 1)[0]
            if "UsageCheck::new(" not in code:
                continue
            m = CALL.search(code)
            assert m, f"{rs.relative_to(ROOT)}: UsageCheck::new called with something else than a function name: {line.strip()}"
            name = function_of(rs, m.group(1))
            fns = [f for f, n in SPOKE_NAMES.items() if n == name]
            assert fns, f"{rs.relative_to(ROOT)}: use checks for {name!r}, which has no spoke role"
            out[fns[0]] = str(rs.relative_to(ROOT))
    assert out, "no UsageCheck::new found in shared/src: has it been renamed?"
    return out


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def spoke() -> dict[str, Any]:
    return load_template(ROOT / "infra" / "spoke-role.yaml")


def hub_identity(template: dict[str, Any], fn: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    return role_identity(template, Resolver(template, MANY if overrides is None else overrides), fn)


def req(principal: str, action: str, resource: str, ctx: dict[str, str] | None = None) -> Request:
    return Request(action, resource, principal, {"aws:PrincipalArn": principal, **(ctx or {})})


# ----------------------------------------------------------------------------
# Drift: the adapters' calls are the ones this file (and the templates) know
# ----------------------------------------------------------------------------

def test_every_usage_report_call_is_known():
    calls = usage_report_calls()
    assert not unknown(calls, USAGE_REPORT_CALLS), \
        f"a new usage report call {sorted(unknown(calls, USAGE_REPORT_CALLS))}: allow it in template.yaml and " \
        "infra/spoke-role.yaml (cleanup and share) and add it to USAGE_REPORT_CALLS"
    assert calls == set(USAGE_REPORT_CALLS), "the table lists a call the adapter no longer makes: drop it"


def test_every_reference_call_is_known():
    calls = reference_calls()
    assert not unknown(calls, REFERENCE_CALLS), \
        f"a new reference call {sorted(unknown(calls, REFERENCE_CALLS))}: allow it to the roles of " \
        f"{list(MAKERS)} (template.yaml and infra/spoke-role.yaml) and add it here"


def test_a_new_call_is_noticed():
    """The drift checks fail on a source with one more call (what a new call in the adapter does)."""
    src = (AWS_SRC / "usage_reports.rs").read_text()
    more = src + "\nlet _ = self\n    .client\n    .delete_image_usage_report()\n    .send();\n"
    assert unknown(sdk_calls(src), USAGE_REPORT_CALLS) == set()
    assert unknown(sdk_calls(more), USAGE_REPORT_CALLS) == {"delete_image_usage_report"}


# ----------------------------------------------------------------------------
# Usage reports: each role that makes them may, no more; the others may not
# ----------------------------------------------------------------------------

def report_scenarios(principal: str) -> list[tuple[str, Request, str]]:
    out = [(f"{call}: {action} on {resource}", req(principal, action, resource, ctx), ALLOW)
           for call in sorted(usage_report_calls()) for action, resource, ctx in USAGE_REPORT_CALLS[call]]
    return out + [
        ("a report of an image another deployment manages",
         req(principal, "ec2:CreateImageUsageReport", IMAGE, {"aws:ResourceTag/ami-lifecycle:managed-by": "other"}),
         IMPLICIT_DENY),
        ("a report of an unmanaged image", req(principal, "ec2:CreateImageUsageReport", IMAGE), IMPLICIT_DENY),
        ("a report in another account", req(principal, "ec2:CreateImageUsageReport", OTHER_REPORT), IMPLICIT_DENY),
        ("deletes a report", req(principal, "ec2:DeleteImageUsageReport", REPORT), IMPLICIT_DENY),
        ("tags a report", req(principal, "ec2:CreateTags", REPORT), IMPLICIT_DENY),
    ]


def report_wrong(principal: str, identity: dict[str, Any]) -> list[str]:
    return [f"{label}: {decide(r, identity=[identity])} != {want}"
            for label, r, want in report_scenarios(principal) if decide(r, identity=[identity]) != want]


@pytest.mark.parametrize("fn", MAKERS)
def test_hub_roles_make_usage_reports_with_accounts(template, fn):
    assert report_wrong(SUITE[fn], hub_identity(template, fn)) == []


@pytest.mark.parametrize("fn", MAKERS)
def test_spoke_roles_make_usage_reports(spoke, fn):
    principal = spoke_role(fn)
    assert report_wrong(principal, spoke_identity(spoke, fn)) == []


@pytest.mark.parametrize("fn", MAKERS)
def test_no_usage_reports_without_accounts(template, fn):
    """The checks do not run without Accounts (usage::enabled): neither do the permissions exist."""
    for overrides in ({}, {"OrganizationId": "o-abcdefghij"}):
        identity = hub_identity(template, fn, overrides)
        for call in sorted(usage_report_calls()):
            for action, resource, ctx in USAGE_REPORT_CALLS[call]:
                assert decide(req(SUITE[fn], action, resource, ctx), identity=[identity]) == IMPLICIT_DENY, \
                    (overrides, action, resource)


@pytest.mark.parametrize("fn", sorted(set(SUITE) - set(MAKERS)))
def test_other_functions_make_no_usage_reports(template, spoke, fn):
    for principal, identity in ((SUITE[fn], hub_identity(template, fn)), (spoke_role(fn), spoke_identity(spoke, fn))):
        for call in sorted(usage_report_calls()):
            for action, resource, ctx in USAGE_REPORT_CALLS[call]:
                assert decide(req(principal, action, resource, ctx), identity=[identity]) == IMPLICIT_DENY, \
                    (principal, action)


# ----------------------------------------------------------------------------
# References in a reachable account: each checking function's own spoke role
# ----------------------------------------------------------------------------

def test_the_functions_making_checks_are_known():
    """The callers of UsageCheck::new are cleanup and share; a new one needs its roles' statements."""
    found = checking_functions()
    assert set(found) == set(MAKERS), \
        f"use checks are started by {found}: give a new one's hub (Fn::If HasAccounts) and spoke roles the " \
        "ImageReferences*, UsageReport* statements and add it to MAKERS; drop one that no longer checks"


def test_a_new_caller_is_noticed(tmp_path, monkeypatch):
    """A copy of the source with one more caller (publish) is found; a caller passing a role that is
    not a function name is refused."""
    (tmp_path / "cleanup").mkdir()
    (tmp_path / "cleanup" / "run.rs").write_text((RUST_SRC / "cleanup" / "run.rs").read_text())
    (tmp_path / "publish").mkdir()
    (tmp_path / "publish" / "mod.rs").write_text('pub const FUNCTION: &str = "publish";\n')
    (tmp_path / "publish" / "run.rs").write_text(
        "use super::FUNCTION;\n// UsageCheck::new(ctx, CHECK_ROLE, now) in a comment is no call\n"
        "let usage = UsageCheck::new(ctx, FUNCTION, now);\n")
    monkeypatch.setattr(sys.modules[__name__], "RUST_SRC", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert set(checking_functions()) == {"CleanupFunction", "PublishFunction"}
    (tmp_path / "publish" / "run.rs").write_text('let usage = UsageCheck::new(ctx, CHECK_ROLE, now);\n')
    with pytest.raises(AssertionError, match="something else than a function name"):
        checking_functions()


def test_checks_go_through_the_running_function_s_spoke_role():
    """usage_check.rs opens a reachable account with the function it was made for, not a fixed role."""
    src = USAGE_CHECK.read_text()
    assert re.search(r"\.for_account\(\s*\w+\s*,\s*self\.function\s*\)", src), \
        "usage_check.rs no longer opens accounts through self.function's spoke role: update these checks"


def reference_scenarios(principal: str) -> list[tuple[str, Request, str]]:
    """Every call of the reference check and every read EC2 makes for the types asked: allowed;
    the Image Builder reads outside EC2, and writes next to the reads: not."""
    out = [(f"{call}: {REFERENCE_CALLS[call]}", req(principal, REFERENCE_CALLS[call], "*"), ALLOW)
           for call in sorted(reference_calls())]
    for rtype in sorted(reference_types()):
        assert rtype in REFERENCE_TYPES, f"DescribeImageReferences asked for {rtype}: add what EC2 reads for it"
        for action in REFERENCE_TYPES[rtype]:
            out.append((f"{rtype}: {action} through EC2", req(principal, action, "*", THROUGH_EC2), ALLOW))
            if action.startswith("imagebuilder:"):
                out.append((f"{rtype}: {action} directly", req(principal, action, "*"), IMPLICIT_DENY))
    return out + [
        ("writes a parameter", req(principal, "ssm:PutParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/x"),
         IMPLICIT_DENY),
        ("reads a SecureString's key", req(principal, "kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd"),
         IMPLICIT_DENY),
        ("changes a launch template",
         req(principal, "ec2:CreateLaunchTemplateVersion", f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/lt-1"),
         IMPLICIT_DENY),
        ("deletes an image recipe", req(principal, "imagebuilder:DeleteImageRecipe", "*", THROUGH_EC2), IMPLICIT_DENY),
    ]


def reference_wrong(principal: str, identity: dict[str, Any]) -> list[str]:
    return [f"{label}: {decide(r, identity=[identity])} != {want}"
            for label, r, want in reference_scenarios(principal) if decide(r, identity=[identity]) != want]


@pytest.mark.parametrize("fn", MAKERS)
def test_each_checking_function_s_spoke_role_reads_every_reference(spoke, fn):
    assert reference_wrong(spoke_role(fn), spoke_identity(spoke, fn)) == []


@pytest.mark.parametrize("fn", MAKERS)
def test_each_checking_function_s_hub_role_reads_references_with_accounts(template, fn):
    """The hub role carries the same reads (its spoke role's policy mirrors it; share's only under
    HasAccounts, cleanup's are its own check)."""
    assert reference_wrong(SUITE[fn], hub_identity(template, fn)) == []


def test_share_reads_no_references_without_accounts(template):
    for overrides in ({}, {"OrganizationId": "o-abcdefghij"}):
        identity = hub_identity(template, "ShareFunction", overrides)
        for call in sorted(reference_calls()):
            assert decide(req(SUITE["ShareFunction"], REFERENCE_CALLS[call], "*"), identity=[identity]) == \
                IMPLICIT_DENY, (overrides, call)


def spoke_trust(spoke: dict[str, Any], target: str) -> dict[str, Any]:
    return Resolver(spoke, {"HubAccountId": HUB, "ExternalId": EXTERNAL_ID}).resolve(
        spoke["Resources"][f"{prefix(target)}SpokeRole"]["Properties"]["AssumeRolePolicyDocument"])


@pytest.mark.parametrize("target", MAKERS)
@pytest.mark.parametrize("fn", sorted(SUITE))
def test_only_its_own_function_gets_into_a_checking_spoke_role(template, spoke, target, fn):
    """The spoke trust admits every hub function role of the deployment; the hub roles' own
    policies decide. cleanup's role gets into cleanup's spoke role only, share's into share's only
    (cleanup's carries deregister/delete, which a share session must not have)."""
    hub_role = f"arn:aws:iam::{HUB}:role/ami-lifecycle/ami-lifecycle/ami-lifecycle-{fn}Role-1A2B3C4D5E6F"
    r = Request("sts:AssumeRole", spoke_role(target), hub_role,
                {"aws:PrincipalArn": hub_role, "sts:ExternalId": EXTERNAL_ID, **in_org()})
    want = ALLOW if fn == target else IMPLICIT_DENY
    assert decide_assume_role(r, spoke_trust(spoke, target), [hub_identity(template, fn)]) == want


def test_spoke_sessions_cannot_reach_other_spokes(spoke):
    """A spoke session (a spoke account's own run) cannot assume another account's checking spoke
    role: the trust names the hub's function roles, and no spoke role may call sts:AssumeRole. From
    there every other account goes through usage reports, as usage_check.rs says."""
    for target in MAKERS:
        trust = spoke_trust(spoke, target)
        for fn in MAKERS:
            me = spoke_role(fn)
            r = Request("sts:AssumeRole", spoke_role(target, account=OTHER_ACCOUNT), me,
                        {"aws:PrincipalArn": me, "sts:ExternalId": EXTERNAL_ID, **in_org()})
            assert decide(r, identity=[spoke_identity(spoke, fn)]) == IMPLICIT_DENY, (fn, target)
            assert decide_assume_role(r, trust, [{"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                  "Resource": "*"}]}]) == IMPLICIT_DENY, (fn, target)


# ----------------------------------------------------------------------------
# Broken statements are noticed
# ----------------------------------------------------------------------------

def _statement(p: dict[str, Any], sid: str) -> dict[str, Any]:
    (s,) = [s for s in p["Statement"] if s.get("Sid") == sid]
    return s


def _any_image(p):
    _statement(p, "UsageReportOfManagedImages").pop("Condition")


def _any_account_s_reports(p):
    _statement(p, "UsageReportInThisAccount")["Resource"] = "arn:aws:ec2:*:*:image-usage-report/*"


def _one_statement_for_both(p):
    # The tag condition then applies to the report too, which has no tags: creation fails.
    _statement(p, "UsageReportOfManagedImages")["Resource"] = [IMAGE.rsplit("/", 1)[0] + "/*",
                                                              REPORT.rsplit("/", 1)[0] + "/*"]
    p["Statement"].remove(_statement(p, "UsageReportInThisAccount"))


def _no_entries(p):
    _statement(p, "ReadUsageReports")["Action"] = ["ec2:DescribeImageUsageReports"]


def _may_delete_reports(p):
    _statement(p, "UsageReportInThisAccount")["Action"] = ["ec2:CreateImageUsageReport", "ec2:DeleteImageUsageReport"]


def _may_tag_reports(p):
    _statement(p, "UsageReportInThisAccount")["Action"] = ["ec2:CreateImageUsageReport", "ec2:CreateTags"]


BAD: dict[str, Callable[[dict[str, Any]], None]] = {
    "reports of any image": _any_image,
    "reports in any account": _any_account_s_reports,
    "one statement for the image and the report": _one_statement_for_both,
    "no DescribeImageUsageReportEntries": _no_entries,
    "may delete reports": _may_delete_reports,
    "may tag reports": _may_tag_reports,
}


@pytest.mark.parametrize("variant", sorted(BAD))
def test_bad_usage_report_statements_are_caught(template, variant):
    fn = "CleanupFunction"
    good = hub_identity(template, fn)
    bad = copy.deepcopy(good)
    BAD[variant](bad)
    assert bad != good, "the mutation changed nothing"
    assert report_wrong(SUITE[fn], good) == []
    assert report_wrong(SUITE[fn], bad), f"{variant}: no scenario notices it"


def _no_get_parameters(p):
    _statement(p, "ImageReferences")["Action"].remove("ssm:GetParameters")


def _no_launch_template_versions(p):
    _statement(p, "ImageReferences")["Action"].remove("ec2:DescribeLaunchTemplateVersions")


def _image_builder_directly(p):
    _statement(p, "ImageReferencesImageBuilder").pop("Condition")


def _no_container_recipes(p):
    _statement(p, "ImageReferencesImageBuilder")["Action"] = ["imagebuilder:ListImageRecipes"]


def _all_of_ssm(p):
    st = _statement(p, "ImageReferences")
    st["Action"] = [a for a in st["Action"] if not a.startswith("ssm:")] + ["ssm:*"]


def _all_of_image_builder(p):
    _statement(p, "ImageReferencesImageBuilder")["Action"] = ["imagebuilder:*"]


BAD_REFERENCES: dict[str, Callable[[dict[str, Any]], None]] = {
    "no GetParameters (the scan's values)": _no_get_parameters,
    "no DescribeLaunchTemplateVersions (the scan's versions)": _no_launch_template_versions,
    "Image Builder read outside EC2": _image_builder_directly,
    "no container recipes": _no_container_recipes,
    "all of SSM": _all_of_ssm,
    "all of Image Builder": _all_of_image_builder,
}


@pytest.mark.parametrize("variant", sorted(BAD_REFERENCES))
def test_bad_reference_statements_are_caught(spoke, variant):
    fn = "ShareFunction"
    good = spoke_identity(spoke, fn)
    bad = copy.deepcopy(good)
    BAD_REFERENCES[variant](bad)
    assert bad != good, "the mutation changed nothing"
    assert reference_wrong(spoke_role(fn), good) == []
    assert reference_wrong(spoke_role(fn), bad), f"{variant}: no scenario notices it"
