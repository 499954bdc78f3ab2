"""Instance status checks and the reboot of CreateImage (moto: always `ok` when running).

A CreateImage without NoReboot reboots a running instance: EC2 shuts it down, takes the
snapshots and starts it again, and its status checks start over (`initializing`) before
they pass. Here, for `reboot_seconds` (control config, default 0) after such a reboot, the
instance's InstanceStatus is `initializing` (its state stays `running`, as moto keeps it),
measured on the emulator's creation clock (so a simulation's clock moves it too). An
instance can also be told to stay `impaired` (`POST /_emulator/instances/<id>/health
{"impaired": true}`) until told otherwise. DescribeInstanceStatus reports both, with
IncludeAllInstances or not; the system status check stays moto's.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import state

# instance id -> time its status checks pass again after a reboot
REBOOTING: dict[str, Any] = {}
IMPAIRED: set[str] = set()


def rebooted(instance_id: str) -> None:
    seconds = float(state.SETTINGS.get("reboot_seconds") or 0.0)
    if seconds > 0:
        with state.LOCK:
            REBOOTING[instance_id] = state.creation_clock() + timedelta(seconds=seconds)


def set_impaired(instance_id: str, impaired: bool) -> None:
    with state.LOCK:
        if impaired:
            IMPAIRED.add(instance_id)
        else:
            IMPAIRED.discard(instance_id)


def reset() -> None:
    with state.LOCK:
        REBOOTING.clear()
        IMPAIRED.clear()


def _status(name: str, status: str) -> dict[str, Any]:
    detail = {"ok": "passed", "impaired": "failed", "initializing": "initializing"}[status]
    return {"Details": [{"Name": name, "Status": detail}], "Status": status}


def install() -> None:
    from moto.ec2.models.instances import Instance

    original = Instance.instance_status

    def instance_status(self) -> dict[str, Any]:
        if self.state_code != 16:
            return original.fget(self)
        if self.id in IMPAIRED:
            return _status("reachability", "impaired")
        until = REBOOTING.get(self.id)
        if until is not None and state.creation_clock() < until:
            return _status("reachability", "initializing")
        return original.fget(self)

    Instance.instance_status = property(instance_status)
