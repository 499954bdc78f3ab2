"""RunInstances `ClientToken` idempotency, and the order of the launch checks.

moto recorded the token on the instance and nothing more: the same token launched a
second instance, a token of any length was taken, and DescribeInstances with the filter
`client-token` answered 500. As the EC2 developer guide ("Ensuring idempotency in Amazon
EC2 API requests") and the RunInstances API reference describe it:
* `ClientToken`: at most 64 ASCII characters (else `InvalidParameterValue`; the limit is
  AWS's, the wording ours);
* the same token with the same parameters answers the reservation it launched (same
  reservation and instance ids, current state) and launches nothing, even once those
  instances are terminated; the same token with other parameters →
  `IdempotentParameterMismatch` "Arguments on this idempotent request are inconsistent
  with arguments used in previous request(s)." (EC2's wording) followed by what it
  launched. `Placement.AvailabilityZone` is left out of the comparison ("other than the
  Region or Availability Zone"). Tokens are per account and region (the same token in
  another region launches there), kept until reset; a refused request records none.
* DescribeInstances filter `client-token`.
Then, before anything is launched: launch_checks.check() (subnet, zone, security
groups, key pair, placement group) and launch_volumes.specs() (block devices); after:
the volumes as asked (launch_volumes.apply()), the placement group, the status checks'
start (instance_status.py). The whole call holds state.LOCK, so two requests with one
token never both launch. This wraps every other RunInstances handler (instances.py,
disabled_images.py, resolve_ssm.py): install it last.
"""
from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

from . import instance_status, launch_checks, launch_volumes, state
from .errors import Ec2Error

MAX_TOKEN = 64
# (account, region, client token) -> (request fingerprint, reservation id)
TOKENS: dict[tuple[str, str, str], tuple[str, str]] = {}
IGNORED = {"ClientToken", "DryRun"}


def reset() -> None:
    with state.LOCK:
        TOKENS.clear()


def fingerprint(params: dict[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if k not in IGNORED}
    placement = dict(kept.get("Placement") or {})
    placement.pop("AvailabilityZone", None)
    if placement:
        kept["Placement"] = placement
    else:
        kept.pop("Placement", None)
    return json.dumps(kept, sort_keys=True, default=str)


def check_token(token: str) -> None:
    if len(token) > MAX_TOKEN or not token.isascii():
        raise Ec2Error("InvalidParameterValue",
                       f"Value ({token}) for parameter clientToken is invalid: a client token "
                       f"is at most {MAX_TOKEN} ASCII characters (this one has {len(token)}). "
                       "Use a shorter token.")


def _reservation(backend: Any, reservation_id: str) -> Any:
    return backend.reservations[reservation_id]


def _volume_tags(self) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in self._get_param("TagSpecifications", []) or []:
        if spec.get("ResourceType") == "volume":
            tags.update({t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])})
    return tags


def _wrap(previous):
    def run_instances(self):
        token = self._get_param("ClientToken")
        account, region = self.current_account, self.region
        with state.LOCK:
            key = None
            if token is not None:
                check_token(token)
                key = (account, region, token)
                fp = fingerprint(self.params)
                seen = TOKENS.get(key)
                if seen is not None:
                    if seen[0] != fp:
                        raise Ec2Error(
                            "IdempotentParameterMismatch",
                            "Arguments on this idempotent request are inconsistent with arguments "
                            f"used in previous request(s). (Client token {token} launched "
                            f"reservation {seen[1]}: use a new client token for another launch.)")
                    self.error_on_dryrun()
                    return ActionResult(_reservation(self.ec2_backend, seen[1]))
            launch_checks.check(self)
            volumes = launch_volumes.specs(self)
            launch_volumes.strip(self)
            result = previous(self)
            reservation = result.result
            for instance in reservation.instances:
                # LaunchTime on the emulator's clock (as CreationDate): a simulation days
                # ahead launches after the slots it has played, as on AWS.
                instance.launch_time = state.creation_clock()
                instance.client_token = token
                launch_volumes.apply(self.ec2_backend, instance, volumes, _volume_tags(self))
                instance_status.launched(instance.id)
            launch_checks.place(self, reservation.instances)
            if key is not None:
                TOKENS[key] = (fp, reservation.id)
            return result

    return run_instances


def install() -> None:
    from moto.ec2 import utils
    from moto.moto_api._internal.models import MotoAPIBackend

    utils.filter_dict_attribute_mapping["client-token"] = "client_token"
    EC2Response.run_instances = _wrap(EC2Response.run_instances)

    previous = MotoAPIBackend.reset

    def reset_with_tokens(self) -> None:
        previous(self)
        reset()

    MotoAPIBackend.reset = reset_with_tokens
