"""Recycle Bin (`rbin`) retention rules: moto has no rbin, so this WSGI layer serves it.

The rbin API is REST-JSON (signing name `rbin`); three operations are answered, per
account (ami_emulator/accounts.py) and region (the SigV4 credential scope):

* CreateRule  `POST /rules`        -> 201 with the rule (`Status` `available` at once);
* ListRules   `POST /list-rules`   -> `Rules` summaries (Identifier, Description,
  RetentionPeriod, LockState, RuleArn: no tags, as on AWS), `MaxResults` 1-1000 and an
  opaque `NextToken`, filtered by ResourceType (required), LockState, ResourceTags and
  ExcludeResourceTags (a rule is listed when it has every tag asked for);
* GetRule     `GET /rules/{id}`    -> the whole rule, with ResourceTags and
  ExcludeResourceTags; `ResourceNotFoundException` (404, `RULE_NOT_FOUND`) otherwise.

Every body is checked against botocore's rbin model first (required members, unknown
members, enums, ranges: `RetentionPeriodValue` 1-3650, at most 50 resource tags and 5
exclusion tags, patterns), then as the Recycle Bin documents: exclusion tags and a lock
only on region-level rules (no ResourceTags), `EC2_IMAGE`/`EBS_SNAPSHOT` retention at
most 365 days and `EBS_VOLUME` at most 7 (EBS user guide). A refusal is
`ValidationException` (400, `INVALID_PARAMETER_VALUE`; `INVALID_PAGE_TOKEN` for a token
this emulator did not hand out). Other rbin operations answer 400
`UnknownOperationException`. Calls and refusals are counted (`calls` / `refused` in
GET /_emulator/counters, as `rbin:<Operation>`). Rules are cleared by `POST /moto-api/reset` (and
/_emulator/reset). The rules retain nothing: deleting an image or snapshot in the
emulator is final; the rules exist for clients that report coverage.
"""
from __future__ import annotations

import base64
import json
import random
import re
import string
import threading
import uuid

from . import accounts, faults, validation
from .accounts import SCOPE_RE

RULE_ID_RE = re.compile(r"[0-9a-zA-Z]{11}")
# EBS user guide, "Create a Recycle Bin retention rule": snapshots and EBS-backed AMIs
# 1-365 days, volumes 1-7 days (the model alone allows 1-3650).
MAX_DAYS = {"EC2_IMAGE": 365, "EBS_SNAPSHOT": 365, "EBS_VOLUME": 7}
DEFAULT_PAGE = 1000

_lock = threading.Lock()
_rules: dict[tuple[str, str], list[dict]] = {}
_rng = random.Random()


def reset() -> None:
    with _lock:
        _rules.clear()


def install() -> None:
    """moto's reset also clears the rules (chained onto whatever reset is installed)."""
    from moto.moto_api._internal.models import MotoAPIBackend

    previous = MotoAPIBackend.reset

    def reset_with_rules(self) -> None:
        previous(self)
        reset()

    MotoAPIBackend.reset = reset_with_rules


# ---------------------------------------------------------------------------- answers

def _answer(start_response, status: int, payload: dict, error: str | None = None):
    body = json.dumps(payload).encode()
    reasons = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found"}
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
               ("x-amzn-RequestId", str(uuid.uuid4()))]
    if error:
        headers.append(("x-amzn-ErrorType", error))
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [body]


def _invalid(start_response, message: str, reason: str = "INVALID_PARAMETER_VALUE"):
    return _answer(start_response, 400, {"Message": message, "Reason": reason},
                   "ValidationException")


def _checked(operation: str, body: dict) -> str | None:
    """The Coral message of what the model refuses in `body`, None when it passes."""
    op = validation.operation_model("rbin", operation)
    problems: list = []
    validation.walk_json(op.input_shape, body, "", problems)
    return validation.coral_message(problems) if problems else None


# ------------------------------------------------------------------------- operations

def _arn(account: str, region: str, rule_id: str) -> str:
    return f"arn:aws:rbin:{region}:{account}:rule/{rule_id}"


def _tags(value) -> list[dict]:
    return [dict(t) for t in (value or [])]


def create_rule(start_response, account: str, region: str, body: dict):
    problem = _checked("CreateRule", body)
    if problem:
        return _invalid(start_response, problem)
    resource_type = body["ResourceType"]
    days = body["RetentionPeriod"]["RetentionPeriodValue"]
    if days > MAX_DAYS[resource_type]:
        return _invalid(start_response, f"RetentionPeriodValue {days} is out of range: "
                        f"{resource_type} rules retain 1 to {MAX_DAYS[resource_type]} days")
    tag_level = bool(body.get("ResourceTags"))
    if tag_level and body.get("ExcludeResourceTags"):
        return _invalid(start_response, "ExcludeResourceTags can only be specified for "
                        "Region-level retention rules (rules without ResourceTags)")
    if tag_level and body.get("LockConfiguration"):
        return _invalid(start_response, "LockConfiguration can only be specified for "
                        "Region-level retention rules (rules without ResourceTags)")
    rule_id = "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(11))
    rule = {
        "Identifier": rule_id,
        "Description": body.get("Description", ""),
        "Tags": _tags(body.get("Tags")),
        "ResourceType": resource_type,
        "RetentionPeriod": dict(body["RetentionPeriod"]),
        "ResourceTags": _tags(body.get("ResourceTags")),
        "ExcludeResourceTags": _tags(body.get("ExcludeResourceTags")),
        "Status": "available",
        "LockState": "locked" if body.get("LockConfiguration") else "unlocked",
        "RuleArn": _arn(account, region, rule_id),
    }
    if body.get("LockConfiguration"):
        rule["LockConfiguration"] = body["LockConfiguration"]
    with _lock:
        _rules.setdefault((account, region), []).append(rule)
    return _answer(start_response, 201, rule)


def _has_all(have: list[dict], wanted: list[dict]) -> bool:
    return all(any(h.get("ResourceTagKey") == w.get("ResourceTagKey")
                   and h.get("ResourceTagValue") == w.get("ResourceTagValue") for h in have)
               for w in wanted)


def _token(offset: int) -> str:
    return base64.b64encode(f"rbin:{offset}".encode()).decode()


def _offset(token: str) -> int | None:
    try:
        text = base64.b64decode(token, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    m = re.fullmatch(r"rbin:(\d+)", text)
    return int(m.group(1)) if m else None


def list_rules(start_response, account: str, region: str, body: dict):
    problem = _checked("ListRules", body)
    if problem:
        return _invalid(start_response, problem)
    start = 0
    if body.get("NextToken"):
        start = _offset(body["NextToken"])
        if start is None:
            return _invalid(start_response, "The NextToken is not valid", "INVALID_PAGE_TOKEN")
    page = body.get("MaxResults") or DEFAULT_PAGE
    with _lock:
        rules = [r for r in _rules.get((account, region), [])
                 if r["ResourceType"] == body["ResourceType"]
                 and (not body.get("LockState") or r["LockState"] == body["LockState"])
                 and _has_all(r["ResourceTags"], body.get("ResourceTags") or [])
                 and _has_all(r["ExcludeResourceTags"], body.get("ExcludeResourceTags") or [])]
    chosen = rules[start:start + page]
    out: dict = {"Rules": [{k: r[k] for k in ("Identifier", "Description", "RetentionPeriod",
                                              "LockState", "RuleArn")} for r in chosen]}
    if start + page < len(rules):
        out["NextToken"] = _token(start + page)
    return _answer(start_response, 200, out)


def get_rule(start_response, account: str, region: str, rule_id: str):
    if not RULE_ID_RE.fullmatch(rule_id):
        return _invalid(start_response, f"1 validation error detected: Value '{rule_id}' at "
                        "'identifier' failed to satisfy constraint: Member must satisfy "
                        "regular expression pattern: [0-9a-zA-Z]{11}")
    with _lock:
        rule = next((r for r in _rules.get((account, region), []) if r["Identifier"] == rule_id),
                    None)
    if rule is None:
        return _answer(start_response, 404, {"Message": f"Rule {rule_id} does not exist",
                                             "Reason": "RULE_NOT_FOUND"},
                       "ResourceNotFoundException")
    return _answer(start_response, 200, {k: v for k, v in rule.items() if k != "Tags"})


# ------------------------------------------------------------------------- middleware

class RecycleBinMiddleware:
    """Answers requests signed for `rbin`; everything else goes on to moto."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        m = SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not m or m.group(2) != "rbin":
            return self.app(environ, start_response)
        region = m.group(1)
        account = accounts.account_of(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        body: dict = {}
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return _answer(start_response, 400, {"Message": "body is not valid JSON"},
                               "SerializationException")
            if not isinstance(body, dict):
                return _answer(start_response, 400, {"Message": "body must be an object"},
                               "SerializationException")
        # Every call counted under `calls`, every refusal under `refused` (as the
        # validation layer counts EC2's), as `rbin:<Operation>` per region.
        def counted(operation: str, answer):
            def start(status, headers, exc_info=None):
                faults.count("calls", region, f"rbin:{operation}")
                if status.startswith("400"):
                    faults.count("refused", region, f"rbin:{operation}")
                return start_response(status, headers, exc_info)
            return answer(start)

        if method == "POST" and path == "/rules":
            return counted("CreateRule", lambda sr: create_rule(sr, account, region, body))
        if method == "POST" and path == "/list-rules":
            return counted("ListRules", lambda sr: list_rules(sr, account, region, body))
        rule = re.fullmatch(r"/rules/([^/]+)", path)
        if method == "GET" and rule:
            return counted("GetRule", lambda sr: get_rule(sr, account, region, rule.group(1)))
        return _answer(start_response, 400,
                       {"Message": f"{method} {path} is not served by the emulator's Recycle Bin "
                                   "(CreateRule, ListRules, GetRule are)"},
                       "UnknownOperationException")
