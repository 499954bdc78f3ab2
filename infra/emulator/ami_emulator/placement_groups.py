"""Placement groups (moto 5.2 has none: CreatePlacementGroup and DescribePlacementGroups
answered 500).

Kept per account+region, cleared by reset. As the EC2 API reference describes them:
* CreatePlacementGroup `GroupName` (unique in the account+region, else
  `InvalidPlacementGroup.Duplicate`), `Strategy` (`cluster` | `spread` | `partition`, the
  enum is the model check), `PartitionCount`, `SpreadLevel`, `TagSpecifications`
  (`placement-group`). The group is `available` at once; its id is `pg-` + 17 hex digits,
  its ARN `arn:aws:ec2:<region>:<account>:placement-group/<name>`.
* DescribePlacementGroups `GroupNames` / `GroupIds` (an unknown one →
  `InvalidPlacementGroup.Unknown` "The Placement Group '<name>' is unknown."), filters
  `group-name`, `group-arn`, `strategy`, `state`, `spread-level`, `tag:<key>`, `tag-key`.
* DeletePlacementGroup: unknown → `InvalidPlacementGroup.Unknown`; a group an instance
  (not terminated) is in → `InvalidPlacementGroup.InUse`.
RunInstances `Placement.GroupName` / `GroupId` is checked against these (launch_checks.py)
and the instance reports the group in `Placement.GroupName` / `GroupId`.
"""
from __future__ import annotations

import secrets
from typing import Any

from moto.core.responses import ActionResult, EmptyResult

from . import state
from .errors import Ec2Error
from .patching import handler

# (account, region) -> group name -> group
GROUPS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}


def reset() -> None:
    with state.LOCK:
        GROUPS.clear()


def unknown(name: str) -> Ec2Error:
    return Ec2Error("InvalidPlacementGroup.Unknown", f"The Placement Group '{name}' is unknown.")


def find(account: str, region: str, name: str | None = None,
         group_id: str | None = None) -> dict[str, Any] | None:
    groups = GROUPS.get((account, region), {})
    if name is not None:
        return groups.get(name)
    return next((g for g in groups.values() if g["GroupId"] == group_id), None)


def _tags(self) -> list[dict[str, str]]:
    out = []
    for spec in self._get_param("TagSpecifications", []) or []:
        if spec.get("ResourceType") == "placement-group":
            out.extend({"Key": t["Key"], "Value": t.get("Value", "")} for t in spec.get("Tags", []))
    return out


def create_placement_group(self):
    name = self._get_param("GroupName")
    if not name:
        raise Ec2Error("MissingParameter", "The request must contain the parameter groupName")
    self.error_on_dryrun()
    account, region = self.current_account, self.region
    with state.LOCK:
        groups = GROUPS.setdefault((account, region), {})
        if name in groups:
            raise Ec2Error("InvalidPlacementGroup.Duplicate",
                           f"The Placement Group '{name}' already exists.")
        group = {
            "GroupName": name,
            "State": "available",
            "Strategy": self._get_param("Strategy"),
            "GroupId": "pg-" + secrets.token_hex(9)[:17],
            "GroupArn": f"arn:{self.partition}:ec2:{region}:{account}:placement-group/{name}",
            "Tags": _tags(self),
        }
        if self._get_param("PartitionCount") is not None:
            group["PartitionCount"] = int(self._get_param("PartitionCount"))
        elif group["Strategy"] == "partition":
            group["PartitionCount"] = 2  # AWS's default partition count
        if self._get_param("SpreadLevel"):
            group["SpreadLevel"] = self._get_param("SpreadLevel")
        elif group["Strategy"] == "spread":
            group["SpreadLevel"] = "rack"
        groups[name] = group
        return ActionResult({"PlacementGroup": dict(group)})


_FILTERS = {"group-name": "GroupName", "group-arn": "GroupArn", "strategy": "Strategy",
            "state": "State", "spread-level": "SpreadLevel"}


def _matches(group: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    for name, values in filters.items():
        if name in _FILTERS:
            if str(group.get(_FILTERS[name])) not in values:
                return False
        elif name.startswith("tag:"):
            if tags.get(name[4:]) not in values:
                return False
        elif name == "tag-key":
            if not set(values) & set(tags):
                return False
        else:
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
    return True


def describe_placement_groups(self):
    names = self._get_param("GroupNames", []) or []
    ids = self._get_param("GroupIds", []) or []
    filters = self._filters_from_querystring()
    self.error_on_dryrun()
    with state.LOCK:
        account, region = self.current_account, self.region
        found = []
        for name in names:
            group = find(account, region, name=name)
            if group is None:
                raise unknown(name)
            found.append(group)
        for group_id in ids:
            group = find(account, region, group_id=group_id)
            if group is None:
                raise unknown(group_id)
            found.append(group)
        if not names and not ids:
            found = list(GROUPS.get((account, region), {}).values())
        return ActionResult({"PlacementGroups": [dict(g) for g in found if _matches(g, filters)]})


def delete_placement_group(self):
    name = self._get_param("GroupName")
    self.error_on_dryrun()
    account, region = self.current_account, self.region
    with state.LOCK:
        if find(account, region, name=name) is None:
            raise unknown(name)
        members = [i.id for i in self.ec2_backend.all_instances()
                   if i.placement.group_name == name and i.state != "terminated"]
        if members:
            raise Ec2Error("InvalidPlacementGroup.InUse",
                           f"The Placement Group '{name}' is in use by {', '.join(members)}: "
                           "terminate them first.")
        del GROUPS[(account, region)][name]
    return EmptyResult()


def install() -> None:
    handler("create_placement_group")(create_placement_group)
    handler("describe_placement_groups")(describe_placement_groups)
    handler("delete_placement_group")(delete_placement_group)
    from moto.moto_api._internal.models import MotoAPIBackend

    previous = MotoAPIBackend.reset

    def reset_with_groups(self) -> None:
        previous(self)
        reset()

    MotoAPIBackend.reset = reset_with_groups
