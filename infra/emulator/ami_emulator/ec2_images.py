"""CreateImage (and RegisterImage block device mappings) as EC2 does it.

moto's CreateImage: 500s on TagSpecifications for `snapshot`, ignores NoReboot and
BlockDeviceMappings, allows duplicate names, is `available` at once and invents one
15 GiB snapshot. EC2 instead:
* tags the image and/or its snapshots at creation (no tagging race);
* rejects a name already used in the account+region with InvalidAMIName.Duplicate;
* reboots a running instance unless NoReboot=true (recorded in state.REBOOTS so tests
  can tell; the control API exposes it);
* starts `pending` (see lifecycle.py);
* takes one snapshot per EBS volume attached to the instance with the volume's size,
  encryption and KMS key; a BlockDeviceMapping with NoDevice leaves that device out.
"""
from __future__ import annotations

import re
from typing import Any

from moto.ec2.models.amis import Ami
from moto.ec2.utils import random_ami_id

from . import health, lifecycle, snapshot_users, state
from .errors import Ec2Error
from .patching import handler, original

NAME_RE = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")


def split_tag_specs(tag_specs: list[dict[str, Any]], allowed=("image", "snapshot")):
    out: dict[str, dict[str, str]] = {k: {} for k in allowed}
    for spec in tag_specs or []:
        rtype = spec.get("ResourceType")
        if rtype not in allowed:
            raise Ec2Error("InvalidParameterValue",
                           f"'{rtype}' is not a valid taggable resource type for this operation.")
        for tag in spec.get("Tags", []) or []:
            out[rtype][tag["Key"]] = tag.get("Value", "")
    return out


def check_name(backend: Any, name: str | None) -> None:
    if not name or not NAME_RE.match(name):
        raise Ec2Error("InvalidAMIName.Malformed",
                       "AMI names must be between 3 and 128 characters long, and may contain "
                       "letters, numbers, '(', ')', '.', '-', '/', '_', ' ', '[', ']', '@' and \"'\"")
    for ami in backend.amis.values():
        if ami.name == name and ami.owner_id == backend.account_id:
            raise Ec2Error("InvalidAMIName.Duplicate",
                           f"AMI name {name} is already in use by AMI {ami.id}")


def check_ami_quota(backend: Any) -> None:
    """The AMIs-per-Region quota (50,000 by default on EC2; `ami_quota` here, unset = no
    limit): images owned by the account that are not deregistered count. EC2 answers
    ResourceLimitExceeded; the exact message is not documented."""
    quota = state.SETTINGS.get("ami_quota")
    if quota is None:
        return
    owned = sum(1 for a in backend.amis.values()
                if a.owner_id == backend.account_id and a.state != "deregistered")
    if owned >= int(quota):
        raise Ec2Error("ResourceLimitExceeded",
                       f"You have reached the maximum number of AMIs ({quota}) for this Region.")


def drop_synthetic_snapshot(backend: Any, ami: Any) -> None:
    """Ami.__init__ always creates a fake snapshot; remove it, we make real ones."""
    backend.snapshots.pop(ami.ebs_snapshot.id, None)


def new_snapshot(backend: Any, ami_id: str, size: int, encrypted: bool,
                 kms_key_id: str | None, description: str, tags: dict[str, str]):
    """A snapshot owned by the image (moto needs a volume to snapshot; use a temp one)."""
    vol = backend.create_volume(size=size, zone_name=f"{backend.region_name}a")
    snap = backend.create_snapshot(vol.id, description, None, from_ami=ami_id)
    backend.delete_volume(vol.id)
    snap.encrypted = bool(encrypted)
    snap.kms_key_id = kms_key_id if encrypted else None
    snap._emu_size = size
    for k, v in tags.items():
        snap.add_tag(k, v)
    return snap


def set_bdm(ami: Any, entries: list[dict[str, Any]]) -> None:
    """entries: {device, snapshot, size, volume_type, delete_on_termination}."""
    ami._emu_bdm = entries
    if entries:
        root = next((e for e in entries if e["device"] == ami.root_device_name), entries[0])
        ami.ebs_snapshot = root["snapshot"]
    snapshot_users.reindex(ami)  # an image already stored now uses other snapshots


def image_snapshots(ami: Any) -> list[Any]:
    entries = getattr(ami, "_emu_bdm", None)
    if entries is None:
        return [ami.ebs_snapshot]
    return [e["snapshot"] for e in entries]


_orig_bdm = Ami.block_device_mappings


def _block_device_mappings(self) -> list[dict[str, Any]]:
    entries = getattr(self, "_emu_bdm", None)
    if entries is None:
        return _orig_bdm.fget(self)
    out = []
    for e in entries:
        snap = e["snapshot"]
        ebs = {
            "SnapshotId": snap.id,
            "VolumeSize": e["size"],
            "DeleteOnTermination": e.get("delete_on_termination", True),
            "VolumeType": e.get("volume_type") or "gp3",
            "Encrypted": bool(snap.encrypted),
        }
        if snap.encrypted and snap.kms_key_id:
            ebs["KmsKeyId"] = snap.kms_key_id
        out.append({"DeviceName": e["device"], "Ebs": ebs})
    return out


def create_image(self):
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    instance_id = self._get_param("InstanceId")
    no_reboot = state.truthy(self._get_param("NoReboot", False))
    bdms = self._get_param("BlockDeviceMappings", []) or []
    self.error_on_dryrun()

    with state.LOCK:
        backend = self.ec2_backend
        tags = split_tag_specs(self._get_param("TagSpecifications", []))
        instance = backend.get_instance(instance_id)
        check_name(backend, name)
        check_ami_quota(backend)
        excluded = {b.get("DeviceName") for b in bdms if "NoDevice" in b}

        ami_id = random_ami_id()
        ami = Ami(backend, ami_id, instance=instance, name=name, description=description,
                  root_device_name=getattr(instance, "root_device_name", None) or "/dev/sda1")
        ami.root_device_type = "ebs"
        ami.creation_date = state.creation_clock()
        drop_synthetic_snapshot(backend, ami)

        entries = []
        for device, bdt in instance.get_block_device_mapping:
            if device in excluded:
                continue
            vol = backend.get_volume(bdt.volume_id)
            snap = new_snapshot(backend, ami_id, vol.size, vol.encrypted, vol.kms_key_id,
                                f"Created by CreateImage({instance_id}) for {ami_id}",
                                tags["snapshot"])
            snap.volume = vol  # VolumeId of an image snapshot is the source volume
            entries.append({"device": device, "snapshot": snap, "size": vol.size,
                            "volume_type": getattr(vol, "volume_type", None),
                            "delete_on_termination": bool(getattr(bdt, "delete_on_termination", True))})
        set_bdm(ami, entries)
        for k, v in tags["image"].items():
            ami.add_tag(k, v)
        backend.amis[ami_id] = ami

        # EC2 reboots a running instance unless NoReboot=true; a stopped one is not rebooted.
        if not no_reboot and instance._state.name == "running":
            state.REBOOTS.setdefault(instance.id, []).append(
                {"image_id": ami_id, "time": state.iso(state.now())})
            health.rebooted(instance.id)
        lifecycle.mark_pending(self.current_account, self.region, ami)

    from moto.core.responses import ActionResult

    return ActionResult({"ImageId": ami_id})


def register_image(self):
    """Honour BlockDeviceMappings' snapshot ids (so two images can share a snapshot); an
    image registered from an S3 manifest (`ImageLocation`, no EBS mappings) is
    instance-store-backed, as on EC2, and so are the instances launched from it."""
    bdms = self._get_param("BlockDeviceMappings", []) or []
    root = self._get_param("RootDeviceName")
    location = self._get_param("ImageLocation")
    result = original("register_image")(self)
    with state.LOCK:
        backend = self.ec2_backend
        ami = backend.amis.get(result.result["ImageId"])
        if ami is not None and location and not any((b.get("Ebs") or {}) for b in bdms):
            ami.root_device_type = "instance-store"
        entries = []
        for b in bdms:
            ebs = b.get("Ebs") or {}
            if not ebs.get("SnapshotId"):
                continue
            snap = backend.get_snapshot(ebs["SnapshotId"])
            entries.append({"device": b.get("DeviceName"), "snapshot": snap,
                            "size": int(ebs.get("VolumeSize") or snap.volume.size),
                            "volume_type": ebs.get("VolumeType"),
                            "delete_on_termination": True})
        if ami is not None and root:
            ami.root_device_name = root  # moto keeps /dev/sda1 whatever was asked
        if ami is not None and entries:
            drop_synthetic_snapshot(backend, ami)
            ami.root_device_type = "ebs"
            set_bdm(ami, entries)
    return result


def install() -> None:
    Ami.block_device_mappings = property(_block_device_mappings)
    handler("create_image")(create_image)
    handler("register_image")(register_image)
