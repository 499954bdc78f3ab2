"""DescribeImages / DescribeSnapshots with EC2's paging and visibility rules.

moto ignores MaxResults/NextToken (returns everything, no token), ignores
IncludeDisabled/IncludeDeprecated, and only sees the caller's own images. EC2:
* pages with MaxResults (DescribeImages 1..1000, DescribeSnapshots 5..1000) and an
  opaque NextToken, in a stable order (here: by id), so no item is skipped or
  repeated while paging;
* hides `disabled` images unless IncludeDisabled=true;
* hides deprecated images (DeprecationTime in the past) unless
  IncludeDeprecated=true or the caller owns them or names them in ImageIds;
* shows images shared with the caller by other accounts (ExecutableUsers=self,
  Owners=<other account>), see visibility.py.
"""
from __future__ import annotations

import base64
from typing import Any

from moto.ec2.utils import generic_filter

from . import state, visibility
from .fast_xml import FastResult
from .errors import Ec2Error, check_image_ids, image_not_found
from .patching import handler, original


def encode_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode()


def decode_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
        if raw.startswith("after:"):
            return raw[len("after:"):]
    except Exception:
        pass
    raise Ec2Error("InvalidPaginationToken", f"The token '{token}' is invalid.")


def paginate(items: list[Any], max_results: Any, next_token: str | None,
             lo: int, hi: int) -> tuple[list[Any], str | None]:
    items = sorted(items, key=lambda x: x.id)
    if next_token:
        after = decode_token(next_token)
        items = [i for i in items if i.id > after]
    if max_results in (None, ""):
        return items, None
    n = int(max_results)
    if n < lo or n > hi:
        raise Ec2Error("InvalidParameterValue",
                       f"Value ( {n} ) for parameter maxResults is invalid. "
                       f"Expecting a value between {lo} and {hi}.")
    page = items[:n]
    token = encode_token(page[-1].id) if len(items) > n else None
    return page, token


def is_deprecated(ami: Any) -> bool:
    when = getattr(ami, "deprecation_time", None)
    return bool(when) and state.parse_iso(when) <= state.now()


def describe_images(self):
    self.error_on_dryrun()
    ami_ids = self._get_param("ImageIds", []) or []
    filters = self._filters_from_querystring()
    owners = self._get_param("Owners", []) or []
    exec_users = self._get_param("ExecutableUsers", []) or []
    include_disabled = state.truthy(self._get_param("IncludeDisabled", False))
    include_deprecated = state.truthy(self._get_param("IncludeDeprecated", False))
    max_results = self._get_param("MaxResults")
    next_token = self._get_param("NextToken")
    if ami_ids and max_results not in (None, ""):
        raise Ec2Error("InvalidParameterCombination",
                       "The parameter imageIdsSet cannot be used with the parameter maxResults")
    account, region = self.current_account, self.region

    with state.LOCK:
        images = list(visibility.visible_images(account, region))
        if ami_ids:
            check_image_ids(ami_ids)
            wanted = set(ami_ids)  # a list would make this images x ids comparisons
            images = [a for a in images if a.id in wanted]
            found = {a.id for a in images}
            deleted = state.ec2_backend(account, region).deleted_amis
            missing = [i for i in ami_ids if i not in found and i not in deleted]
            if missing:
                raise image_not_found(missing)
        if exec_users:
            users = {account if u == "self" else u for u in exec_users}
            images = [a for a in images if a.is_public or any(
                lp.get("UserId") in users for lp in a.launch_permissions)]
        if owners:
            wanted = {account if o == "self" else o for o in owners}
            images = [a for a in images if a.owner_id in wanted or a.owner_alias in wanted]
        if filters:
            images = generic_filter(filters, images)
        if not include_disabled:
            images = [a for a in images if a.state != "disabled"]
        if not include_deprecated and not ami_ids:
            images = [a for a in images if a.owner_id == account or not is_deprecated(a)]
        page, token = paginate(images, max_results, next_token, 1, 1000)
    result: dict[str, Any] = {"Images": page}
    if token:
        result["NextToken"] = token
    return FastResult(result)


def describe_snapshots(self):
    max_results = self._get_param("MaxResults")
    next_token = self._get_param("NextToken")
    with state.LOCK:
        # moto's own handler does ids/filters/owners; we only page its answer.
        full = original("describe_snapshots")(self)
        snaps = list(full.result["Snapshots"])
        page, token = paginate(snaps, max_results, next_token, 5, 1000)
    result: dict[str, Any] = {"Snapshots": page}
    if token:
        result["NextToken"] = token
    return FastResult(result)


def backend_describe_snapshots(self, snapshot_ids=None, filters=None):
    """moto's EBSBackend.describe_snapshots with the ids in a set: moto tests each of the
    region's snapshots against the id list (10,000 snapshots x 200 ids per cleanup batch).
    Same order, same error, same filters."""
    from moto.ec2.exceptions import InvalidSnapshotIdError
    from moto.ec2.utils import generic_filter as _filter

    matches = list(self.snapshots.values())
    if snapshot_ids:
        wanted = set(snapshot_ids)
        matches = [snap for snap in matches if snap.id in wanted]
        if len(snapshot_ids) > len(matches):
            raise InvalidSnapshotIdError()
    if filters:
        matches = _filter(filters, matches)
    return matches


def install() -> None:
    from moto.ec2.models.elastic_block_store import EBSBackend

    handler("describe_images")(describe_images)
    handler("describe_snapshots")(describe_snapshots)
    EBSBackend.describe_snapshots = backend_describe_snapshots
