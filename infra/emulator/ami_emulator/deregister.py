"""DeregisterImage and the image-lifecycle switches moto lacks or gets wrong.

* DeregisterImage DeleteAssociatedSnapshots=true deletes the image's snapshots and
  returns DeleteSnapshotResults (SnapshotId + ReturnCode); a snapshot still used by
  another image is kept (ReturnCode `client-error`). moto ignores the flag.
* Deregistration protection (Enable/DisableImageDeregistrationProtection, with the
  optional 24 h cooldown): a protected image cannot be deregistered. The EC2 docs name
  no specific code; we answer `OperationNotPermitted` (HTTP 400), an EC2 common
  client error. moto does not implement these actions (HTTP 500).
* Enable/DisableImageDeprecation set/clear DeprecationTime (not implemented in moto).
* DisableImage: state `disabled`, launch permissions removed (the AMI becomes
  private), `EC2 AMI State Change` with state `disabled`; EnableImage: back to
  `available` (event `available`). moto changes the state only.
* Deregistration emits `EC2 AMI State Change` state `deregistered`.
* A locked snapshot (snapshot_lock.py) is kept by DeleteAssociatedSnapshots
  (ReturnCode `client-error`).
"""
from __future__ import annotations

from datetime import timedelta

from moto.core.responses import ActionResult

from . import events, snapshot_lock, snapshot_users, state
from .ec2_images import image_snapshots
from .errors import Ec2Error, check_image_ids, image_not_found
from .patching import handler


def _own_image(self, image_id: str):
    check_image_ids(image_id)
    backend = self.ec2_backend
    if image_id in backend.amis:
        return backend.amis[image_id]
    if image_id in backend.deleted_amis:
        raise Ec2Error("InvalidAMIID.Unavailable", f"The image ID '{image_id}' is no longer available")
    raise image_not_found(image_id)


def _protected(ami) -> bool:
    prot = getattr(ami, "deregistration_protection", None) or "disabled"
    if prot.startswith("enabled"):
        return True
    until = getattr(ami, "_emu_protected_until", None)
    return until is not None and until > state.now()


def deregister_image(self):
    image_id = self._get_param("ImageId")
    delete_snaps = state.truthy(self._get_param("DeleteAssociatedSnapshots", False))
    self.error_on_dryrun()
    account, region = self.current_account, self.region
    with state.LOCK:
        backend = self.ec2_backend
        ami = _own_image(self, image_id)
        if _protected(ami):
            raise Ec2Error("OperationNotPermitted",
                           f"The image {image_id} has deregistration protection enabled and "
                           "cannot be deregistered.")
        snaps = image_snapshots(ami)
        backend.amis.pop(image_id)
        backend.deleted_amis.append(image_id)
        state.PENDING.pop((account, region, image_id), None)
        results = []
        if delete_snaps:
            for snap in snaps:
                # The image is out of backend.amis already: any user left is another image.
                if snapshot_users.users_of(backend, snap.id) or snapshot_lock.is_locked(snap):
                    results.append({"SnapshotId": snap.id, "ReturnCode": "client-error"})
                elif backend.snapshots.pop(snap.id, None) is not None:
                    results.append({"SnapshotId": snap.id, "ReturnCode": "success"})
                else:
                    results.append({"SnapshotId": snap.id, "ReturnCode": "client-error"})
        events.ami_state_change(account, region, image_id, "deregistered")
    out = {"Return": True}
    if delete_snaps:
        out["DeleteSnapshotResults"] = results
    return ActionResult(out)


def enable_image_deregistration_protection(self):
    image_id = self._get_param("ImageId")
    cooldown = state.truthy(self._get_param("WithCooldown", False))
    self.error_on_dryrun()
    with state.LOCK:
        ami = _own_image(self, image_id)
        ami.deregistration_protection = "enabled-with-cooldown" if cooldown else "enabled"
        ami._emu_protected_until = None
    return ActionResult({"Return": "true"})


def disable_image_deregistration_protection(self):
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    with state.LOCK:
        ami = _own_image(self, image_id)
        if getattr(ami, "deregistration_protection", "") == "enabled-with-cooldown":
            until = state.now() + timedelta(hours=24)
            ami._emu_protected_until = until
            ami.deregistration_protection = f"disabled-until {state.iso(until)}"
        else:
            ami.deregistration_protection = "disabled"
    return ActionResult({"Return": "true"})


def enable_image_deprecation(self):
    image_id = self._get_param("ImageId")
    deprecate_at = self._get_param("DeprecateAt")
    self.error_on_dryrun()
    with state.LOCK:
        ami = _own_image(self, image_id)
        when = deprecate_at if not isinstance(deprecate_at, str) else state.parse_iso(deprecate_at)
        ami.deprecation_time = state.iso(when).replace(".000Z", "Z")
    return ActionResult({"Return": True})


def disable_image_deprecation(self):
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    with state.LOCK:
        ami = _own_image(self, image_id)
        ami.deprecation_time = None
    return ActionResult({"Return": True})


def disable_image(self):
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    with state.LOCK:
        ami = _own_image(self, image_id)
        ami.state = "disabled"
        ami.launch_permissions = []  # a disabled AMI is made private
        events.ami_state_change(self.current_account, self.region, image_id, "disabled")
    return ActionResult({"Return": True})


def enable_image(self):
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    with state.LOCK:
        ami = _own_image(self, image_id)
        ami.state = "available"
        events.ami_state_change(self.current_account, self.region, image_id, "available")
    return ActionResult({"Return": True})


def install() -> None:
    for fn in (deregister_image, enable_image_deregistration_protection,
               disable_image_deregistration_protection, enable_image_deprecation,
               disable_image_deprecation, disable_image, enable_image):
        handler(fn.__name__)(fn)
