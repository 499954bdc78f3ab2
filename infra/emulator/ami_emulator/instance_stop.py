"""StopInstances: `stopping` for a while, then `stopped` (moto: `stopped` at once).

EC2 answers StopInstances with `CurrentState` `stopping`; the instance shows `stopping`
(code 64) until it has shut down, then `stopped` (80), which is what a caller that stops
an instance before imaging it waits for (the `instance_stopped` waiter). Here, for
`stop_seconds` (control config, default 0: `stopped` at once, as moto) after
StopInstances, a running instance is `stopping` in DescribeInstances (state and the
`instance-state-name` / `instance-state-code` filters) and absent from
DescribeInstanceStatus without `IncludeAllInstances`; then `stopped`, measured on the
emulator's creation clock (so `clock_offset_seconds` moves it too). StartInstances of a
`stopping` instance → `IncorrectInstanceState` "The instance '<id>' is not in a state
from which it can be started." (EC2's wording).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from moto.ec2.models.instances import Instance, InstanceState
from moto.ec2.responses import EC2Response

from . import state
from .errors import Ec2Error

# instance id -> time it is stopped
STOPPING: dict[str, Any] = {}


def reset() -> None:
    with state.LOCK:
        STOPPING.clear()


def _settle(instance: Any) -> None:
    until = STOPPING.get(instance.id)
    if until is None:
        return
    if instance._state.code != 64:  # terminated or started meanwhile
        STOPPING.pop(instance.id, None)
    elif state.creation_clock() >= until:
        instance._state = InstanceState("stopped", 80)
        STOPPING.pop(instance.id, None)


def _wrap_stop(previous):
    def stop_instances(self):
        ids = self._get_param("InstanceIds", []) or []
        running = {i.id for i in self.ec2_backend.get_multi_instances_by_id(ids)
                   if i.state_code in (0, 16)}
        result = previous(self)
        seconds = float(state.SETTINGS.get("stop_seconds") or 0.0)
        if seconds > 0:
            with state.LOCK:
                for instance in self.ec2_backend.get_multi_instances_by_id(list(running)):
                    instance._state = InstanceState("stopping", 64)
                    STOPPING[instance.id] = state.creation_clock() + timedelta(seconds=seconds)
        return result

    return stop_instances


def _wrap_start(previous):
    def start_instances(self):
        ids = self._get_param("InstanceIds", []) or []
        for instance in self.ec2_backend.get_multi_instances_by_id(ids):
            _settle(instance)
            if instance._state.code == 64:
                raise Ec2Error("IncorrectInstanceState",
                               f"The instance '{instance.id}' is not in a state from which it "
                               "can be started.")
        return previous(self)

    return start_instances


def _settling(prop):
    def get(self):
        _settle(self)
        return prop.fget(self)

    return property(get)


def install() -> None:
    from moto.moto_api._internal.models import MotoAPIBackend

    for name in ("instance_state", "state", "state_code"):
        setattr(Instance, name, _settling(getattr(Instance, name)))
    EC2Response.stop_instances = _wrap_stop(EC2Response.stop_instances)
    EC2Response.start_instances = _wrap_start(EC2Response.start_instances)

    previous = MotoAPIBackend.reset

    def reset_with_stopping(self) -> None:
        previous(self)
        reset()

    MotoAPIBackend.reset = reset_with_stopping
