"""Per-instance timeline: what was done to an instance, in order, for tests to read.

AWS exposes no such view; tests of application-consistent images need one to check the
order freeze → CreateImage → thaw and that no reboot happened. `TIMELINE` maps an
instance id to entries `{"seq", "time", "kind", ...}` (`seq` orders entries made within
the same clock tick; `time` is the emulator's creation clock, so `clock_offset_seconds`
moves it as it moves CreationDate):

* `command`: a SendCommand invocation on the instance (ssm_commands.py): `command_id`,
  `document`, `parameters`, `action` (the `action`/`Action` parameter, lower-case),
  `comment`, `timeout_seconds`; the control API adds its current `status`.
* `create-image`: a CreateImage of the instance: `image_id`, `name`, `no_reboot`, or
  `error` (the code) when EC2 refused it after the request reached the handler.
* `reboot`: the instance was rebooted: by a CreateImage without NoReboot (`image_id`,
  `cause: CreateImage`) or by RebootInstances (`cause: RebootInstances`).

Served by `GET /_emulator/instances/<id>/timeline`; cleared by reset.
"""
from __future__ import annotations

import copy
import itertools
from typing import Any

from . import state

TIMELINE: dict[str, list[dict[str, Any]]] = {}
_SEQ = itertools.count(1)


def clock_iso(dt) -> str:
    """ISO 8601 in UTC with milliseconds for the (naive, UTC) creation clock."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def record(instance_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    with state.LOCK:
        entry = {"seq": next(_SEQ), "time": clock_iso(state.creation_clock()), "kind": kind, **fields}
        TIMELINE.setdefault(instance_id, []).append(entry)
        return entry


def entries(instance_id: str) -> list[dict[str, Any]]:
    with state.LOCK:
        return copy.deepcopy(TIMELINE.get(instance_id, []))


def reset() -> None:
    with state.LOCK:
        TIMELINE.clear()


def error_code(e: Exception) -> str:
    """The AWS error code of an exception raised in a moto handler (moto's RESTError
    keeps it in `error_type` and the HTTP status in `code`)."""
    code = getattr(e, "error_type", None) or getattr(e, "code", None)
    return code if isinstance(code, str) and code else type(e).__name__


def _wrap_create_image(previous):
    def create_image(self):
        if state.truthy(self._get_param("DryRun", False)):
            return previous(self)
        instance_id = self._get_param("InstanceId")
        name = self._get_param("Name")
        no_reboot = state.truthy(self._get_param("NoReboot", False))
        with state.LOCK:
            reboots_before = len(state.REBOOTS.get(instance_id, []))
            try:
                result = previous(self)
            except Exception as e:
                record(instance_id, "create-image", image_id=None, name=name, no_reboot=no_reboot,
                       error=error_code(e))
                raise
            image_id = result.result["ImageId"]
            record(instance_id, "create-image", image_id=image_id, name=name, no_reboot=no_reboot)
            if len(state.REBOOTS.get(instance_id, [])) > reboots_before:
                record(instance_id, "reboot", image_id=image_id, cause="CreateImage")
        return result

    return create_image


def _wrap_reboot_instances(previous):
    def reboot_instances(self):
        result = previous(self)  # raises (and records nothing) for unknown ids or a dry run
        for instance_id in self._get_param("InstanceIds", []) or []:
            record(instance_id, "reboot", cause="RebootInstances")
        return result

    return reboot_instances


def install() -> None:
    """Wraps the CreateImage handler installed by ec2_images (install after it)."""
    from moto.ec2.responses import EC2Response

    EC2Response.create_image = _wrap_create_image(EC2Response.create_image)
    EC2Response.reboot_instances = _wrap_reboot_instances(EC2Response.reboot_instances)
