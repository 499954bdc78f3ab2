"""Block public access for AMIs: GetImageBlockPublicAccessState,
EnableImageBlockPublicAccess, DisableImageBlockPublicAccess (moto 5.2.5 has none: a
share of `all` failed with HTTP 500 reading the state).

Per account and region, `unblocked` until enabled. EC2 takes up to 10 minutes to apply a
change; here it applies at once. Not emulated: ModifyImageAttribute refusing a public
launch permission while blocked (the suite reads the state first and refuses `all`
itself), and `ManagedBy` (declarative policies).
"""
from __future__ import annotations

from moto.core.responses import ActionResult

from . import state
from .errors import Ec2Error
from .patching import handler

BLOCKED: dict[tuple[str, str], str] = {}
STATES = ("unblocked", "block-new-sharing")


def _key(self) -> tuple[str, str]:
    return (self.current_account, self.region)


def get_image_block_public_access_state(self):
    self.error_on_dryrun()
    with state.LOCK:
        value = BLOCKED.get(_key(self), "unblocked")
    return ActionResult({"ImageBlockPublicAccessState": value, "ManagedBy": "account"})


def enable_image_block_public_access(self):
    self.error_on_dryrun()
    value = self._get_param("ImageBlockPublicAccessState")
    if value != "block-new-sharing":
        raise Ec2Error(
            "InvalidParameterValue",
            f"Value ({value}) for parameter ImageBlockPublicAccessState is invalid. "
            "Valid values: block-new-sharing",
        )
    with state.LOCK:
        BLOCKED[_key(self)] = value
    return ActionResult({"ImageBlockPublicAccessState": value})


def disable_image_block_public_access(self):
    self.error_on_dryrun()
    with state.LOCK:
        BLOCKED[_key(self)] = "unblocked"
    return ActionResult({"ImageBlockPublicAccessState": "unblocked"})


def reset() -> None:
    with state.LOCK:
        BLOCKED.clear()


def install() -> None:
    handler("get_image_block_public_access_state")(get_image_block_public_access_state)
    handler("enable_image_block_public_access")(enable_image_block_public_access)
    handler("disable_image_block_public_access")(disable_image_block_public_access)
