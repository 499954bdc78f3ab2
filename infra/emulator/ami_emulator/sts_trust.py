"""STS AssumeRole honours the role's trust policy (moto assumes any ARN, existing or not).

moto's AssumeRole hands out credentials for any role ARN, and its access keys then act as
the role's account (accounts.py). This module keeps all of that and adds, before moto
runs, what AWS decides from the *role's* side:

* the role must exist in the IAM of the account its ARN names (exact ARN, path
  included); otherwise `AccessDenied` (403), as AWS answers: it never says
  NoSuchEntity to a caller that may not see the role;
* its trust policy (`AssumeRolePolicyDocument`) must allow `sts:AssumeRole` to the
  caller: explicit `Deny` wins, then any `Allow` whose `Action`/`NotAction`,
  `Principal`/`NotPrincipal` and every `Condition` match; else `AccessDenied` with
  AWS's wording `User: <caller ARN> is not authorized to perform: sts:AssumeRole on
  resource: <role ARN>`.

Principals (`AWS`): `*`, an account id or `arn:aws:iam::<acct>:root` (any principal
of that account), a role ARN (sessions of that role), a user ARN, an assumed-role
session ARN. `Service` / `Federated` principals never match a signed AWS caller.

The caller (`Trust.caller`): a session of a role assumed through the emulator (its
role ARN is `aws:PrincipalArn`, its session ARN is what the error names), an IAM user
with a moto access key, else the account's root (`arn:aws:iam::<acct>:root`; a
12-digit access key or any unknown key). So to act as a hub *function role*, assume it
first (its trust names the hub account).

Condition keys: `sts:ExternalId`, `sts:RoleSessionName`, `aws:PrincipalArn`,
`aws:PrincipalAccount`, `aws:PrincipalType` (`AssumedRole`, `User`, `Account`),
`aws:PrincipalOrgID` (from the emulator's Organizations). Operators: `String*`
(`Equals`, `NotEquals`, `EqualsIgnoreCase`, `NotEqualsIgnoreCase`, `Like`, `NotLike`),
`Arn*` (`Equals` = `Like`, `NotEquals` = `NotLike`, component-wise wildcards), `Null`,
`Bool`, each with `...IfExists`. A key absent from the request makes a positive
operator false and a negated one true (AWS's rule). An unknown operator never matches.

Not emulated: the caller's own identity policy (IAM authorization is not emulated),
session policies, tags, SCPs/RCPs.
"""
from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.sts.responses import TokenResponse

from . import state

ARN_ROLE_RE = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role/.+")


class AccessDenied(ServiceException):
    def __init__(self, message: str):
        super().__init__("AccessDenied", message)
        self.code, self.message = "AccessDenied", message


class Caller:
    """Who signs the request, as IAM sees it."""

    def __init__(self, account: str, arn: str, principal_arn: str, kind: str):
        self.account, self.arn, self.principal_arn, self.kind = account, arn, principal_arn, kind


def caller_of(account: str, access_key: str) -> Caller:
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    session = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
    if session is not None:
        return Caller(account, session.arn, session.role_arn, "AssumedRole")
    user = iam_backends[account]["global"].get_user_from_access_key_id(access_key)
    if user is not None:
        return Caller(account, user.arn, user.arn, "User")
    root = f"arn:aws:iam::{account}:root"
    return Caller(account, root, root, "Account")


def find_role(role_arn: str):
    from moto.iam.models import iam_backends

    m = ARN_ROLE_RE.fullmatch(role_arn or "")
    if not m:
        return None
    backend = iam_backends[m.group(2)]["global"]
    return next((r for r in backend.get_roles() if r.arn == role_arn), None)


def _listify(v: Any) -> list:
    return v if isinstance(v, list) else [v]


def _wild(pattern: str, value: str, ignore_case: bool = False) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S | (re.I if ignore_case else 0)) is not None


def arn_like(pattern: str, value: str) -> bool:
    """ARN match: six colon-separated components, wildcards within each (the last one
    takes the rest of the ARN, slashes and colons included)."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == len(v) == 6 and all(_wild(a, b) for a, b in zip(p, v))


def principal_matches(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for entry in _listify(principal.get("AWS", [])):
        entry = str(entry)
        if entry == "*":
            return True
        root = re.fullmatch(r"(\d{12})|arn:aws[a-z-]*:iam::(\d{12}):root", entry)
        if root:
            if caller.account in root.groups():
                return True
        elif entry in (caller.principal_arn, caller.arn):
            return True
    return False


def action_matches(statement: dict) -> bool:
    if "NotAction" in statement:
        return not any(_wild(a, "sts:AssumeRole", True) for a in _listify(statement["NotAction"]))
    return any(_wild(a, "sts:AssumeRole", True) for a in _listify(statement.get("Action", [])))


def context_of(caller: Caller, body: dict[str, str]) -> dict[str, str]:
    from . import organizations

    ctx = {"aws:principalarn": caller.principal_arn, "aws:principalaccount": caller.account,
           "aws:principaltype": caller.kind}
    org = organizations.organization_of(caller.account)
    if org:
        ctx["aws:principalorgid"] = org
    if body.get("ExternalId") is not None:
        ctx["sts:externalid"] = body["ExternalId"]
    if body.get("RoleSessionName") is not None:
        ctx["sts:rolesessionname"] = body["RoleSessionName"]
    return ctx


def _compare(op: str, wanted: list[str], value: str) -> bool | None:
    """Positive form of the operator on a present value; None for an unknown operator."""
    if op in ("StringEquals", "StringNotEquals"):
        return value in wanted
    if op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return value.lower() in [w.lower() for w in wanted]
    if op in ("StringLike", "StringNotLike"):
        return any(_wild(w, value) for w in wanted)
    if op in ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"):
        return any(arn_like(w, value) for w in wanted)
    if op == "Bool":
        return value.lower() in [w.lower() for w in wanted]
    return None


def condition_holds(op: str, key: str, wanted: list[str], ctx: dict[str, str]) -> bool:
    if_exists = op.endswith("IfExists")
    base = op[:-len("IfExists")] if if_exists else op
    for prefix in ("ForAnyValue:", "ForAllValues:"):  # every key here is single-valued
        if base.startswith(prefix):
            base = base[len(prefix):]
    value = ctx.get(key.lower())
    if base == "Null":
        return (value is None) == (str(wanted[0]).lower() == "true")
    negated = "Not" in base
    if value is None:
        return if_exists or negated
    positive = _compare(base, [str(w) for w in wanted], value)
    if positive is None:
        return False
    return not positive if negated else positive


def conditions_hold(conditions: dict, ctx: dict[str, str]) -> bool:
    return all(condition_holds(op, key, _listify(wanted), ctx)
               for op, block in (conditions or {}).items()
               for key, wanted in (block or {}).items())


def _statement_applies(st: dict, caller: Caller, ctx: dict[str, str]) -> bool:
    if not action_matches(st):
        return False
    if "NotPrincipal" in st:
        if principal_matches(st["NotPrincipal"], caller):
            return False
    elif not principal_matches(st.get("Principal"), caller):
        return False
    return conditions_hold(st.get("Condition") or {}, ctx)


def trust_allows(document: str, caller: Caller, ctx: dict[str, str]) -> bool:
    try:
        policy = json.loads(document)
    except ValueError:
        try:
            policy = json.loads(unquote(document))
        except ValueError:
            return False
    statements = _listify(policy.get("Statement", []))
    if any(st.get("Effect") == "Deny" and _statement_applies(st, caller, ctx) for st in statements):
        return False
    return any(st.get("Effect") == "Allow" and _statement_applies(st, caller, ctx)
               for st in statements)


def check(account: str, access_key: str, body: dict[str, str]) -> None:
    """Raise AccessDenied unless the caller may assume body["RoleArn"]."""
    role_arn = body.get("RoleArn") or ""
    with state.LOCK:
        caller = caller_of(account, access_key)
        role = find_role(role_arn)
        allowed = role is not None and trust_allows(role.assume_role_policy_document, caller,
                                                    context_of(caller, body))
    if not allowed:
        raise AccessDenied(f"User: {caller.arn} is not authorized to perform: sts:AssumeRole "
                           f"on resource: {role_arn}")


_moto_assume_role = TokenResponse.assume_role


def assume_role(self: TokenResponse):
    body = {k: self._get_param(k) for k in ("RoleArn", "ExternalId", "RoleSessionName")}
    try:
        check(self.current_account, self.get_access_key(), body)
    except AccessDenied as e:
        # moto takes an error's HTTP status from the STS model, which does not list
        # AccessDenied (default 400): serialize it here and answer 403 as STS does.
        _, headers, payload = self.serialized(ActionResult(e))
        headers["status"] = 403
        return payload, headers
    return _moto_assume_role(self)


def install() -> None:
    TokenResponse.assume_role = assume_role
