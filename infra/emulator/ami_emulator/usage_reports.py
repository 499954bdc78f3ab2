"""EC2 image usage reports (moto has none): which OTHER accounts use an image you own.

CreateImageUsageReport / DescribeImageUsageReports / DescribeImageUsageReportEntries /
DeleteImageUsageReport as the EC2 API reference describes them, per account+region of
the caller (`Report`, kept in REPORTS, cleared by reset):

* CreateImageUsageReport `ImageId` (an image the caller owns in that region, else
  `InvalidAMIID.NotFound`; malformed → `InvalidAMIID.Malformed`); `ResourceType.N`:
  `ec2:Instance`, `ec2:LaunchTemplate` (option `version-depth` 1-10000, default 20: only
  each template's N newest versions count), `imagebuilder:ImageRecipe` /
  `imagebuilder:ContainerRecipe` accepted, never counted (no Image Builder here);
  `AccountId.N` (≤ 200 by the model; 12 digits each) limits the report to those accounts,
  none = all accounts; `TagSpecification.N` only `image-usage-report`; `ClientToken`:
  same token + same request → same report, other request → `IdempotentParameterMismatch`.
  Answers `ReportId` (`amiur-` + 17 hex digits).
* The report is computed when it is created, from every account the emulator holds
  state for in the region except the owner: instances launched from the image that are
  not terminated (`ec2:Instance`), launch templates with the image in one of their
  `version-depth` newest versions (`ec2:LaunchTemplate`, one per template). Whether the
  image is still shared does not matter (an account keeps using what it launched).
  One entry per (account, resource type) with `UsageCount` > 0.
* State `pending` until `usage_report_delay_seconds` (config, default 0) have passed on
  the creation clock, then `available`; the control API can put a report in `error`
  with a `StateReason`. AWS documents data lagging up to a day; 0 keeps tests fast.
  `ExpirationTime` = creation + 30 days; an expired report is gone.
* DescribeImageUsageReports: `ImageId.N` / `ReportId.N` (an unknown report id →
  `InvalidImageUsageReportId.NotFound`, our code: AWS documents none), filters
  `creation-time` (wildcards), `state`, `tag:<key>`, `tag-key`; `MaxResults` ≥ 1 +
  `NextToken`.
* DescribeImageUsageReportEntries: entries of `available` reports only; `ImageId.N`,
  `ReportId.N`, filters `account-id`, `creation-time`, `resource-type`; `MaxResults` ≥ 1
  + `NextToken`; stable order (report, account, resource type).
* DeleteImageUsageReport `ReportId` → `Return` true; unknown → the NotFound above.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from moto.core.responses import ActionResult

from . import state
from .errors import Ec2Error, check_image_ids, image_not_found
from .patching import handler

TYPES = ("ec2:Instance", "ec2:LaunchTemplate", "imagebuilder:ImageRecipe",
         "imagebuilder:ContainerRecipe")
DEFAULT_DEPTH = 20
MAX_DEPTH = 10000
RETENTION = timedelta(days=30)


class Report:
    def __init__(self, report_id: str, account: str, region: str, image_id: str,
                 resource_types: list[dict], account_ids: list[str], tags: list[dict],
                 created: datetime, counts: list[tuple[str, str, int]]):
        self.id, self.account, self.region, self.image_id = report_id, account, region, image_id
        self.resource_types, self.account_ids, self.tags = resource_types, account_ids, tags
        self.created, self.counts = created, counts
        self.error: str | None = None  # StateReason once the control API fails it

    def state(self, now: datetime) -> str:
        if self.error is not None:
            return "error"
        delay = float(state.SETTINGS.get("usage_report_delay_seconds") or 0.0)
        return "available" if now >= self.created + timedelta(seconds=delay) else "pending"

    def describe(self, now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {"ImageId": self.image_id, "ReportId": self.id,
                               "ResourceTypes": self.resource_types, "State": self.state(now),
                               "CreationTime": self.created,
                               "ExpirationTime": self.created + RETENTION}
        if self.account_ids:
            out["AccountIds"] = self.account_ids
        if self.error is not None:
            out["StateReason"] = self.error
        if self.tags:
            out["Tags"] = self.tags
        return out


# (account, region) -> {report id: Report}, in creation order
REPORTS: dict[tuple[str, str], dict[str, Report]] = {}
# (account, region, client token) -> (request fingerprint, report id)
TOKENS: dict[tuple[str, str, str], tuple[str, str]] = {}


def reset() -> None:
    with state.LOCK:
        REPORTS.clear()
        TOKENS.clear()


def _bad(message: str) -> Ec2Error:
    return Ec2Error("InvalidParameterValue", message)


def not_found(report_id: str) -> Ec2Error:
    return Ec2Error("InvalidImageUsageReportId.NotFound",
                    f"The image usage report ID '{report_id}' does not exist")


def parse_resource_types(raw: list[dict]) -> tuple[list[dict], dict[str, int | None]]:
    """-> (ResourceTypes as the report echoes them, {type: version depth or None})."""
    echoed, scope = [], {}
    for rt in raw:
        rtype = rt.get("ResourceType")
        if rtype not in TYPES:
            raise _bad(f"Value ({rtype}) for parameter ResourceType is invalid. "
                       f"Valid values: {', '.join(TYPES)}.")
        if rtype in scope:
            raise _bad(f"Resource type {rtype} is given more than once.")
        depth = DEFAULT_DEPTH if rtype == "ec2:LaunchTemplate" else None
        options = []
        for opt in rt.get("ResourceTypeOptions") or []:
            name, values = opt.get("OptionName"), opt.get("OptionValues") or []
            if rtype != "ec2:LaunchTemplate" or name != "version-depth":
                raise _bad(f"Option ({name}) is not valid for resource type {rtype}. Valid "
                           "option: version-depth, for ec2:LaunchTemplate only.")
            if len(values) != 1 or not str(values[0]).isdigit() \
                    or not 1 <= int(values[0]) <= MAX_DEPTH:
                raise _bad(f"Value ({', '.join(map(str, values))}) for option version-depth "
                           f"is invalid. Expecting one integer between 1 and {MAX_DEPTH}.")
            depth = int(values[0])
            options.append({"OptionName": name, "OptionValues": [str(depth)]})
        scope[rtype] = depth
        entry: dict[str, Any] = {"ResourceType": rtype}
        if options:
            entry["ResourceTypeOptions"] = options
        echoed.append(entry)
    return echoed, scope


def count_usage(owner: str, region: str, image_id: str, scope: dict[str, int | None],
                accounts: set[str] | None) -> list[tuple[str, str, int]]:
    """[(account, resource type, count)] for the other accounts that use the image now."""
    out = []
    for account, r, backend in sorted(state.iter_ec2_backends(), key=lambda x: x[0]):
        if r != region or account == owner or (accounts is not None and account not in accounts):
            continue
        if "ec2:Instance" in scope:
            n = sum(1 for inst in backend.all_instances()
                    if inst.image_id == image_id and inst._state.name != "terminated")
            if n:
                out.append((account, "ec2:Instance", n))
        if "ec2:LaunchTemplate" in scope:
            depth = scope["ec2:LaunchTemplate"]
            n = 0
            for lt in list(backend.launch_templates.values()):
                newest = sorted(lt.versions, key=lambda v: int(v.number), reverse=True)[:depth]
                n += any(v.image_id == image_id for v in newest)
            if n:
                out.append((account, "ec2:LaunchTemplate", n))
    return out


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _tags(specs: list[dict]) -> list[dict]:
    tags = []
    for spec in specs:
        if spec.get("ResourceType") != "image-usage-report":
            raise _bad(f"'{spec.get('ResourceType')}' is not a valid taggable resource type "
                       "for this operation. Use image-usage-report.")
        tags += [{"Key": t.get("Key"), "Value": t.get("Value", "")} for t in spec.get("Tags") or []]
    if len(tags) > 50:
        raise Ec2Error("TagLimitExceeded", f"The report would have {len(tags)} tags; the limit "
                       "is 50 per resource.")
    return tags


def live_reports(account: str, region: str, now: datetime) -> dict[str, Report]:
    reports = REPORTS.setdefault((account, region), {})
    for rid in [rid for rid, r in reports.items() if now >= r.created + RETENTION]:
        del reports[rid]
    return reports


def create_image_usage_report(self):
    image_id = self._get_param("ImageId")
    raw_types = self._get_param("ResourceTypes", []) or []
    account_ids = [str(a) for a in (self._get_param("AccountIds", []) or [])]
    token = self._get_param("ClientToken")
    specs = self._get_param("TagSpecifications", []) or []
    self.error_on_dryrun()
    check_image_ids(image_id)
    echoed, scope = parse_resource_types(raw_types)
    if not scope:
        raise Ec2Error("MissingParameter", "The request must contain the parameter ResourceType")
    bad = [a for a in account_ids if not re.fullmatch(r"\d{12}", a)]
    if bad:
        raise _bad(f"Value ({bad[0]}) for parameter AccountId is invalid. Expecting a 12-digit "
                   "AWS account ID.")
    tags = _tags(specs)
    account, region = self.current_account, self.region
    with state.LOCK:
        ami = state.ec2_backend(account, region).amis.get(image_id)
        if ami is None or ami.owner_id != account:
            raise image_not_found(image_id)  # reports are for images the caller owns
        fp = _fingerprint(image_id, echoed, account_ids, tags)
        if token:
            seen = TOKENS.get((account, region, token))
            if seen is not None:
                if seen[0] != fp:
                    raise Ec2Error("IdempotentParameterMismatch", f"The client token '{token}' "
                                   "was already used with a different request.")
                return ActionResult({"ReportId": seen[1]})
        now = state.creation_clock()
        report = Report(f"amiur-{secrets.token_hex(9)[:17]}", account, region, image_id, echoed,
                        account_ids, tags, now,
                        count_usage(account, region, image_id, scope,
                                    set(account_ids) if account_ids else None))
        live_reports(account, region, now)[report.id] = report
        if token:
            TOKENS[(account, region, token)] = (fp, report.id)
    return ActionResult({"ReportId": report.id})


def _select(self, now: datetime) -> list[Report]:
    image_ids = set(self._get_param("ImageIds", []) or [])
    report_ids = list(self._get_param("ReportIds", []) or [])
    reports = live_reports(self.current_account, self.region, now)
    for rid in report_ids:
        if rid not in reports:
            raise not_found(rid)
    return [r for r in reports.values()
            if (not report_ids or r.id in report_ids) and (not image_ids or r.image_id in image_ids)]


def _time_matches(pattern: str, when: datetime) -> bool:
    text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text) is not None


def _filters(self, allowed: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    out = []
    for f in self._get_param("Filters", []) or []:
        name = f.get("Name") or ""
        if name not in allowed and not (name.startswith("tag:") and "tag:" in allowed):
            raise _bad(f"The filter '{name}' is invalid. Valid filters: "
                       f"{', '.join(a if a != 'tag:' else 'tag:<key>' for a in allowed)}.")
        out.append((name, [str(v) for v in f.get("Values") or []]))
    return out


def _page(self, items: list, kind: str, field: str) -> ActionResult:
    max_results = self._get_param("MaxResults")
    token = self._get_param("NextToken")
    start = 0
    if token:
        try:
            t_kind, start = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
            start = int(start)
            assert t_kind == kind and start >= 0
        except Exception:
            raise Ec2Error("InvalidPaginationToken", f"The token '{token}' is invalid.")
    result: dict[str, Any] = {}
    if max_results not in (None, ""):
        n = int(max_results)
        if n < 1:
            raise _bad(f"Value ( {n} ) for parameter MaxResults is invalid. Expecting a value "
                       "greater than or equal to 1.")
        result[field] = items[start:start + n]
        if start + n < len(items):
            result["NextToken"] = base64.urlsafe_b64encode(f"{kind}:{start + n}".encode()).decode()
    else:
        result[field] = items[start:]
    return ActionResult(result)


def describe_image_usage_reports(self):
    filters = _filters(self, ("creation-time", "state", "tag:", "tag-key"))
    self.error_on_dryrun()
    with state.LOCK:
        now = state.creation_clock()
        out = []
        for r in _select(self, now):
            tags = {t["Key"]: t["Value"] for t in r.tags}
            ok = True
            for name, values in filters:
                if name == "creation-time":
                    ok = any(_time_matches(v, r.created) for v in values)
                elif name == "state":
                    ok = r.state(now) in values
                elif name == "tag-key":
                    ok = any(v in tags for v in values)
                else:
                    ok = tags.get(name[4:]) in values
                if not ok:
                    break
            if ok:
                out.append(r.describe(now))
    return _page(self, out, "reports", "ImageUsageReports")


def describe_image_usage_report_entries(self):
    filters = _filters(self, ("account-id", "creation-time", "resource-type"))
    self.error_on_dryrun()
    with state.LOCK:
        now = state.creation_clock()
        entries = []
        for r in _select(self, now):
            if r.state(now) != "available":
                continue
            for account, rtype, n in r.counts:
                values = {"account-id": account, "resource-type": rtype}
                if all(any(_time_matches(v, r.created) for v in vals) if name == "creation-time"
                       else values[name] in vals for name, vals in filters):
                    entries.append({"ResourceType": rtype, "ReportId": r.id, "UsageCount": n,
                                    "AccountId": account, "ImageId": r.image_id,
                                    "ReportCreationTime": r.created})
    return _page(self, entries, "entries", "ImageUsageReportEntries")


def delete_image_usage_report(self):
    report_id = self._get_param("ReportId")
    self.error_on_dryrun()
    with state.LOCK:
        reports = live_reports(self.current_account, self.region, state.creation_clock())
        if report_id not in reports:
            raise not_found(report_id)
        del reports[report_id]
    return ActionResult({"Return": True})


def fail(report_id: str, reason: str) -> dict[str, Any] | None:
    """Control API: put a report in `error` (None if no such report)."""
    with state.LOCK:
        for reports in REPORTS.values():
            report = reports.get(report_id)
            if report is not None:
                report.error = reason
                return {"report_id": report_id, "state": "error", "state_reason": reason}
    return None


def install() -> None:
    handler("create_image_usage_report")(create_image_usage_report)
    handler("describe_image_usage_reports")(describe_image_usage_reports)
    handler("describe_image_usage_report_entries")(describe_image_usage_report_entries)
    handler("delete_image_usage_report")(delete_image_usage_report)
