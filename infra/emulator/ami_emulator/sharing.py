"""Snapshot and image sharing in the structured forms the SDKs send.

* ModifySnapshotAttribute: the SDKs send
  `CreateVolumePermission.Add.N.UserId` / `.Remove.N.UserId` / `.Add.N.Group=all`;
  moto only honours the flat `OperationType` + `UserId.N` form, so the structured
  form is a silent no-op there. We apply both.
* ModifyImageAttribute LaunchPermission Add/Remove with UserId, Group=all,
  OrganizationArn and OrganizationalUnitArn: moto already stores these entries and
  DescribeImageAttribute(launchPermission) returns them; we only make DescribeImages
  of the grantee see the image (visibility.py) - tests pin the behaviour.
"""
from __future__ import annotations

from moto.core.responses import EmptyResult

from . import state
from .patching import handler, original


def modify_snapshot_attribute(self):
    snapshot_id = self._get_param("SnapshotId")
    cvp = self._get_param("CreateVolumePermission", {}) or {}
    if not cvp.get("Add") and not cvp.get("Remove"):
        return original("modify_snapshot_attribute")(self)
    self.error_on_dryrun()
    with state.LOCK:
        backend = self.ec2_backend
        for op, entries in (("add", cvp.get("Add") or []), ("remove", cvp.get("Remove") or [])):
            users = [e["UserId"] for e in entries if e.get("UserId")]
            groups = [e["Group"] for e in entries if e.get("Group")]
            if op == "add":
                backend.add_create_volume_permission(snapshot_id, user_ids=users, groups=groups)
            else:
                backend.remove_create_volume_permission(snapshot_id, user_ids=users, groups=groups)
    return EmptyResult()


def install() -> None:
    handler("modify_snapshot_attribute")(modify_snapshot_attribute)
