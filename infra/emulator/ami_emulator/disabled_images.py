"""What EC2 refuses for a disabled image (DisableImage, see deregister.py).

The EC2 User Guide ("Disable an AMI"): a disabled AMI can't be shared, and launches
from it fail; re-enabling (EnableImage) makes it `available` and shareable again, but
the accounts that lost access do not regain it. moto lets both through.

* ModifyImageAttribute adding a launch permission (any form: UserId, Group=all,
  organization / OU ARN, or OperationType=add) to a disabled image → `IncorrectState`
  (400). Removing permissions stays allowed (there are none left).
* RunInstances from a disabled image → `IncorrectState` (400).

AWS documents both refusals without naming an error code; `IncorrectState` ("the
resource is in an incorrect state for the request") is an EC2 common client error and
our choice. Both handlers wrap whatever handler is installed before them (moto's or
another module's), so this module is installed after instances.py.
"""
from __future__ import annotations

from moto.ec2.responses import EC2Response

from . import state
from .errors import Ec2Error


def _own_disabled(self, image_id: str | None) -> bool:
    if not image_id:
        return False
    with state.LOCK:
        ami = self.ec2_backend.amis.get(image_id)
        return ami is not None and ami.state == "disabled"


def _adds_launch_permission(self) -> bool:
    lp = self._get_param("LaunchPermission", {}) or {}
    if lp.get("Add"):
        return True
    return self._get_param("OperationType") == "add"


def _wrap_modify_image_attribute(previous):
    def modify_image_attribute(self):
        image_id = self._get_param("ImageId")
        if _adds_launch_permission(self) and _own_disabled(self, image_id):
            raise Ec2Error("IncorrectState",
                           f"The image {image_id} is disabled: a disabled AMI can't be shared. "
                           "Re-enable it (EnableImage) first.")
        return previous(self)
    return modify_image_attribute


def _wrap_run_instances(previous):
    def run_instances(self):
        image_id = self._get_param("ImageId")
        if _own_disabled(self, image_id):
            raise Ec2Error("IncorrectState",
                           f"The image {image_id} is disabled: instances can't be launched from it. "
                           "Re-enable it (EnableImage) first.")
        return previous(self)
    return run_instances


def install() -> None:
    EC2Response.modify_image_attribute = _wrap_modify_image_attribute(EC2Response.modify_image_attribute)
    EC2Response.run_instances = _wrap_run_instances(EC2Response.run_instances)
