"""A tiny IAM policy evaluator for the policy tests (`Request`, `decide`, `decide_kms`).

It answers one question: is this request allowed, explicitly denied or implicitly
denied, given identity policies, an optional resource policy, an optional permissions
boundary and optional SCPs (same-account requests only). It knows only the condition
operators the project's policies use, with AWS's documented semantics; anything else
(another operator, `...IfExists`, `NotPrincipal`) raises `Unsupported` instead of being
guessed, so a policy that drifts outside what is tested fails loudly.

Semantics implemented (IAM User Guide, "Condition operators" and "Conditions with
multiple context keys or values"):
* operators in a Condition block are ANDed, keys under one operator are ANDed, the
  values of one key are ORed (NORed for a negated operator);
* a key missing from the request makes a condition false, except for negated
  operators (StringNotEquals, StringNotLike, ArnNotEquals, ArnNotLike), where it is true;
* `ForAnyValue:` is false on a missing or empty key, `ForAllValues:` is true on one;
* `Null: {key: "true"}` holds when the key is absent;
* condition key names are case-insensitive, string values case-sensitive, actions
  case-insensitive; `*` and `?` are wildcards in the *Like operators, actions,
  resources and principals.
Evaluation: an explicit Deny anywhere wins; a boundary that does not allow the action
denies it (a boundary is applied to every request here, a simplification: AWS does not
apply it to a resource policy that names the role itself); otherwise an Allow in an
identity or the resource policy allows it. Principals are matched by ARN pattern only:
an account-root principal in a resource policy is not modelled by `decide`.

`decide_assume_role` is sts:AssumeRole into a role of another account (IAM User Guide,
"Cross-account policy evaluation logic"): the role's trust policy must allow the caller AND
the caller's own identity policies must allow the call; an explicit Deny in either wins. A
trust statement naming an account root (`arn:...:iam::<account>:root`) matches every
principal of that account, its Condition still applies.

`decide_kms` is the KMS variant (AWS KMS Developer Guide, "Key policies"): the key policy
is the only way in. A key-policy Allow naming a principal allows it by itself; an Allow
naming the principal's account root (`arn:...:iam::<account>:root`) only lets that
account's IAM policies decide, so the principal also needs an identity Allow (the root
user itself needs none); an explicit Deny in the key policy or an identity policy wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit-deny", "implicit-deny"

OPERATORS = {"StringEquals", "StringNotEquals", "StringLike", "StringNotLike",
             "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike", "Bool", "Null"}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike",
           "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
SET_QUALIFIERS = {"", "ForAnyValue", "ForAllValues"}
STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "Condition"}


class Unsupported(ValueError):
    """The policy uses something this evaluator does not model."""


@dataclass
class Request:
    action: str
    resource: str
    principal: str  # an ARN, or a service principal such as events.amazonaws.com
    context: dict[str, Any] = field(default_factory=dict)  # condition keys -> str | list[str]

    def value(self, key: str) -> Any:
        for k, v in self.context.items():
            if k.lower() == key.lower():
                return v
        return None


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _compare(op: str, expected: str, actual: Any) -> bool:
    if op == "StringEquals":
        return isinstance(actual, str) and actual == expected
    if op == "StringLike":
        return isinstance(actual, str) and _glob(expected, actual)
    if op in ("ArnEquals", "ArnLike"):  # both accept wildcards in IAM
        return isinstance(actual, str) and _glob(expected, actual)
    if op == "Bool":
        return str(actual).lower() == str(expected).lower()
    raise Unsupported(op)


def _key_holds(qualifier: str, op: str, expected: list[Any], actual: Any) -> bool:
    if op == "Null":
        if len(expected) != 1 or str(expected[0]).lower() not in ("true", "false"):
            raise Unsupported(f"Null needs a single true/false, got {expected}")
        absent = actual is None or actual == []
        return absent == (str(expected[0]).lower() == "true")
    negated = op in NEGATED
    base = NEGATED.get(op, op)

    def one(v: Any) -> bool:
        hit = any(_compare(base, str(e), v) for e in expected)
        return not hit if negated else hit

    if qualifier == "":
        if actual is None:
            return negated
        values = _list(actual)
        if len(values) != 1:
            raise Unsupported(f"{op} on a multi-valued key needs ForAnyValue/ForAllValues")
        return one(values[0])
    values = _list(actual) if actual is not None else []
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    return all(one(v) for v in values)  # ForAllValues: vacuously true when empty


def condition_holds(condition: dict[str, Any], req: Request) -> bool:
    for operator, block in condition.items():
        qualifier, _, op = operator.rpartition(":")
        if qualifier not in SET_QUALIFIERS or op not in OPERATORS:
            raise Unsupported(f"condition operator {operator!r}")
        for key, expected in block.items():
            if not _key_holds(qualifier, op, _list(expected), req.value(key)):
                return False
    return True


def _principal_matches(principal: Any, req: Request) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        raise Unsupported(f"Principal {principal!r}")
    for kind, values in principal.items():
        if kind not in ("AWS", "Service"):
            raise Unsupported(f"Principal type {kind}")
        if any(v == "*" or _glob(v, req.principal) for v in _list(values)):
            return True
    return False


def statement_applies(stmt: dict[str, Any], req: Request, resource_policy: bool = False) -> bool:
    unknown = set(stmt) - STATEMENT_KEYS
    if unknown:
        raise Unsupported(f"statement keys {sorted(unknown)}")
    if stmt.get("Effect") not in ("Allow", "Deny"):
        raise Unsupported(f"Effect {stmt.get('Effect')!r}")
    if "Action" in stmt:
        if not any(_glob(a, req.action, ignore_case=True) for a in _list(stmt["Action"])):
            return False
    elif "NotAction" in stmt:
        if any(_glob(a, req.action, ignore_case=True) for a in _list(stmt["NotAction"])):
            return False
    else:
        raise Unsupported("statement without Action/NotAction")
    if "Resource" in stmt:
        if not any(_glob(r, req.resource) for r in _list(stmt["Resource"])):
            return False
    elif "NotResource" in stmt:
        if any(_glob(r, req.resource) for r in _list(stmt["NotResource"])):
            return False
    if resource_policy:
        if "Principal" not in stmt or not _principal_matches(stmt["Principal"], req):
            return False
    elif "Principal" in stmt:
        raise Unsupported("Principal in an identity policy")
    return condition_holds(stmt.get("Condition", {}), req)


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return _list(policy.get("Statement", []))


def decide(req: Request, identity: list[dict[str, Any]] = (), resource: dict[str, Any] | None = None,
           boundary: dict[str, Any] | None = None, scps: list[dict[str, Any]] = ()) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for a same-account request.

    An SCP given here is evaluated as attached next to AWS's default FullAWSAccess, so
    only its Deny statements matter."""
    effects: list[str] = []
    for p in identity:
        effects += [s["Effect"] for s in _statements(p) if statement_applies(s, req)]
    if resource is not None:
        effects += [s["Effect"] for s in _statements(resource) if statement_applies(s, req, True)]
    for p in scps:
        effects += ["Deny" for s in _statements(p) if s["Effect"] == "Deny" and statement_applies(s, req)]
    boundary_allows = True
    if boundary is not None:
        hits = [s["Effect"] for s in _statements(boundary) if statement_applies(s, req)]
        effects += [e for e in hits if e == "Deny"]
        boundary_allows = "Allow" in hits
    if "Deny" in effects:
        return EXPLICIT_DENY
    if not boundary_allows:
        return IMPLICIT_DENY
    return ALLOW if "Allow" in effects else IMPLICIT_DENY


_ROOT = re.compile(r"arn:[^:]+:iam::([0-9]{12}):root")
_PRINCIPAL_ACCOUNT = re.compile(r"arn:[^:]+:(?:iam|sts)::([0-9]{12}):.+")


def _names_root_of(principal: Any, account: str | None) -> bool:
    if account is None or not isinstance(principal, dict):
        return False
    for v in _list(principal.get("AWS", [])):
        m = _ROOT.fullmatch(v) if isinstance(v, str) else None
        if v == account or (m and m.group(1) == account):
            return True
    return False


def decide_kms(req: Request, key_policy: dict[str, Any], identity: list[dict[str, Any]] = ()) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for a request on one KMS key (see the module doc)."""
    m = _PRINCIPAL_ACCOUNT.fullmatch(req.principal)
    account = m.group(1) if m else None
    is_root_user = _ROOT.fullmatch(req.principal) is not None
    denied = direct = delegated = False
    for s in _statements(key_policy):
        if _names_root_of(s.get("Principal"), account):
            if not statement_applies({**s, "Principal": "*"}, req, resource_policy=True):
                continue
            if s["Effect"] == "Deny":
                denied = True
            elif is_root_user:
                direct = True
            else:
                delegated = True
        elif statement_applies(s, req, resource_policy=True):
            if s["Effect"] == "Deny":
                denied = True
            else:
                direct = True
    hits = [s["Effect"] for p in identity for s in _statements(p) if statement_applies(s, req)]
    if denied or "Deny" in hits:
        return EXPLICIT_DENY
    if direct or (delegated and "Allow" in hits):
        return ALLOW
    return IMPLICIT_DENY


def decide_assume_role(req: Request, trust: dict[str, Any], identity: list[dict[str, Any]] = ()) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for a cross-account sts:AssumeRole (see the module doc)."""
    m = _PRINCIPAL_ACCOUNT.fullmatch(req.principal)
    account = m.group(1) if m else None
    trusted: list[str] = []
    for s in _statements(trust):
        if _names_root_of(s.get("Principal"), account):
            s = {**s, "Principal": "*"}
        if statement_applies(s, req, resource_policy=True):
            trusted.append(s["Effect"])
    hits = [s["Effect"] for p in identity for s in _statements(p) if statement_applies(s, req)]
    if "Deny" in trusted or "Deny" in hits:
        return EXPLICIT_DENY
    return ALLOW if "Allow" in trusted and "Allow" in hits else IMPLICIT_DENY
