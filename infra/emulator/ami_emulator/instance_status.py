"""Status checks of a new (or started) instance: `initializing`, then `ok`.

EC2 runs an instance's status checks once it is `running`: until they have passed,
DescribeInstanceStatus reports both the instance and the system check as `initializing`
(details `reachability`: `initializing`); a caller that waits for a launched instance
to be usable waits for `ok` (the `instance_status_ok` / `system_status_ok` waiters).
moto answered `ok` at once. Here, for `launch_status_seconds` (control config, default 0:
`ok` at once, as before) after RunInstances (run_instances.py) or StartInstances, both
checks are `initializing`, measured on the emulator's creation clock (so
`clock_offset_seconds` moves it too). An instance told to be impaired (health.py) is
impaired. Stopped instances are listed only with `IncludeAllInstances` (moto's own,
pinned by tests/test_run_instances.py). StopInstances is moto's: it answers `stopping`
and the instance is `stopped` at once (EC2 takes a while; a caller that waits sees
`stopped` on its first look).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from moto.ec2.responses import EC2Response

from . import health, state

# instance id -> time its status checks pass
STARTING: dict[str, Any] = {}


def reset() -> None:
    with state.LOCK:
        STARTING.clear()


def launched(instance_id: str) -> None:
    seconds = float(state.SETTINGS.get("launch_status_seconds") or 0.0)
    with state.LOCK:
        if seconds > 0:
            STARTING[instance_id] = state.creation_clock() + timedelta(seconds=seconds)
        else:
            STARTING.pop(instance_id, None)


def initializing(instance: Any) -> bool:
    until = STARTING.get(instance.id)
    return (instance.state_code == 16 and instance.id not in health.IMPAIRED
            and until is not None and state.creation_clock() < until)


_INITIALIZING = {"Details": [{"Name": "reachability", "Status": "initializing"}],
                 "Status": "initializing"}


def _wrap_property(previous):
    def status(self) -> dict[str, Any]:
        if initializing(self):
            return {"Details": [dict(d) for d in _INITIALIZING["Details"]], "Status": "initializing"}
        return previous.fget(self)

    return property(status)


def _wrap_start(previous):
    def start_instances(self):
        ids = self._get_param("InstanceIds", []) or []
        stopped = [i.id for i in self.ec2_backend.get_multi_instances_by_id(ids)
                   if i.state_code != 16]
        result = previous(self)
        for instance_id in stopped:  # a running instance's checks go on as they were
            launched(instance_id)
        return result

    return start_instances


def install() -> None:
    """After health.py: its impaired/rebooting answer stays under this one."""
    from moto.ec2.models.instances import Instance
    from moto.moto_api._internal.models import MotoAPIBackend

    Instance.instance_status = _wrap_property(Instance.instance_status)
    Instance.system_status = _wrap_property(Instance.system_status)
    EC2Response.start_instances = _wrap_start(EC2Response.start_instances)

    previous = MotoAPIBackend.reset

    def reset_with_status(self) -> None:
        previous(self)
        reset()

    MotoAPIBackend.reset = reset_with_status
