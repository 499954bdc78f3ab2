"""RunInstances `BlockDeviceMappings`: the volumes get what the request asks, as on EC2.

moto dropped `Iops` and `Throughput` (so `io1`/`io2` with `Iops` was refused and a gp3
got 3000/none), gave a device of the image that the request overrides (e.g. a bigger
root) a blank volume instead of one from the image's snapshot, kept no key for a volume
restored from an encrypted snapshot, and let a request decrypt one. Here, per requested
EBS device (EC2 API reference, EbsBlockDevice):
* the snapshot is the request's `SnapshotId`, else the image's snapshot for that device
  name; an unknown snapshot → `InvalidSnapshot.NotFound`;
* `VolumeSize` defaults to the image's size for the device, else the snapshot's; a size
  smaller than the snapshot → `InvalidBlockDeviceMapping` "Volume of size <n>GB is
  smaller than snapshot '<snap>', expect size >= <m>GB" (EC2's wording);
* `VolumeType` defaults to the image's type for the device, else `gp2`; `Iops` (required
  for io1/io2, gp3 default 3000; with other types refused) and `Throughput` (gp3 only) as
  moto's CreateVolume checks them (`InvalidParameterDependency`, the wording naming the
  device ours);
* `KmsKeyId` without `Encrypted=true` → `InvalidParameterDependency` "The parameter
  [KmsKeyId] requires the parameter Encrypted to be set." (moto's CreateVolume wording);
* `Encrypted=false` for a device whose snapshot is encrypted → `InvalidBlockDeviceMapping`
  ("In no case can you remove encryption from an encrypted volume"; the code is ours, AWS
  documents the rule, not its code);
* the volume is encrypted if the request or the snapshot says so; its key is `KmsKeyId`
  (an alias or id recorded as the key ARN), else the snapshot's key, else the account's
  default EBS key (ebs_keys.py);
* `DeleteOnTermination` defaults to the image's value for the device, else true.
validate() runs before anything is launched; strip() then hands moto placeholders it
cannot get wrong, and apply() replaces them with the volumes described here, after
instances.py has added the image's other devices. Volume tags (`TagSpecifications` of
type `volume`) go on every volume of the instance, the image's included.
"""
from __future__ import annotations

from typing import Any

from moto.ec2.models.elastic_block_store import (IOPS_REQUIRED_VOLUME_TYPES,
                                                IOPS_SUPPORTED_VOLUME_TYPES,
                                                THROUGHPUT_SUPPORTED_VOLUME_TYPES)

from . import ebs_keys, instances, state, visibility
from .copy import resolve_kms_key
from .errors import Ec2Error
from .resolve_ssm import is_alias


def _dependency(param: str, needs: str) -> Ec2Error:
    return Ec2Error("InvalidParameterDependency",
                    f"The parameter [{param}] requires the parameter {needs} to be set.")


def snapshot_size(snap: Any) -> int:
    size = getattr(snap, "_emu_size", None)
    return int(size if size is not None else snap.volume.size)


def _find_snapshot(account: str, region: str, snapshot_id: str) -> Any | None:
    """The caller's snapshot, else one of the region's held by another account (shared)."""
    own = state.ec2_backend(account, region).snapshots.get(snapshot_id)
    if own is not None:
        return own
    for _, reg, backend in state.iter_ec2_backends():
        if reg == region and snapshot_id in backend.snapshots:
            return backend.snapshots[snapshot_id]
    return None


def specs(self) -> dict[str, dict[str, Any]]:
    """device -> the volume to make, for every EBS device of the request (validated)."""
    account, region = self.current_account, self.region
    image_id = self._get_param("ImageId")
    ami = visibility.find_image(account, region, image_id) if image_id and not is_alias(image_id) else None
    # Only images made or registered with devices (ec2_images.py / copy.py) have real
    # snapshots; moto's own synthetic image snapshot is no device to inherit.
    image = {e["device"]: e for e in instances.image_devices(ami, "/dev/sda1")} \
        if getattr(ami, "_emu_bdm", None) else {}
    out = {}
    for bdm in self._get_param("BlockDeviceMappings", []) or []:
        ebs = bdm.get("Ebs")
        device = bdm.get("DeviceName")
        if not ebs or bdm.get("NoDevice") is not None:
            continue
        img = image.get(device) or {}
        snap = None
        if ebs.get("SnapshotId"):
            snap = _find_snapshot(account, region, ebs["SnapshotId"])
            if snap is None:
                raise Ec2Error("InvalidSnapshot.NotFound",
                               f"The snapshot '{ebs['SnapshotId']}' does not exist.")
        elif img.get("snapshot") is not None:
            snap = img["snapshot"]
        size = ebs.get("VolumeSize") or img.get("size") or (snapshot_size(snap) if snap else None)
        if size is None:
            raise Ec2Error("MissingParameter",
                           f"The request must contain the parameter size or snapshotId "
                           f"(device {device})")
        if snap is not None and int(size) < snapshot_size(snap):
            raise Ec2Error("InvalidBlockDeviceMapping",
                           f"Volume of size {size}GB is smaller than snapshot '{snap.id}', "
                           f"expect size >= {snapshot_size(snap)}GB")
        volume_type = ebs.get("VolumeType") or img.get("volume_type") or "gp2"
        iops, throughput = ebs.get("Iops"), ebs.get("Throughput")
        if volume_type in IOPS_REQUIRED_VOLUME_TYPES and not iops:
            raise _dependency("VolumeType", "Iops")
        if iops and volume_type not in IOPS_SUPPORTED_VOLUME_TYPES:
            raise Ec2Error("InvalidParameterDependency",
                           f"Device {device}: Iops is valid only for VolumeType "
                           f"{', '.join(IOPS_SUPPORTED_VOLUME_TYPES)}, not {volume_type}.")
        if throughput and volume_type not in THROUGHPUT_SUPPORTED_VOLUME_TYPES:
            raise Ec2Error("InvalidParameterDependency",
                           f"Device {device}: Throughput is valid only for VolumeType gp3, "
                           f"not {volume_type}.")
        encrypted_param = ebs.get("Encrypted")
        if ebs.get("KmsKeyId") and encrypted_param is not True:
            raise _dependency("KmsKeyId", "Encrypted")
        snap_encrypted = bool(snap is not None and snap.encrypted)
        if snap_encrypted and encrypted_param is False:
            raise Ec2Error("InvalidBlockDeviceMapping",
                           f"Device {device}: snapshot '{snap.id}' is encrypted and a volume "
                           "made from it is encrypted too (EC2 never removes encryption): "
                           "leave Encrypted out or set it to true.")
        encrypted = bool(encrypted_param) or snap_encrypted
        key = None
        if encrypted:
            if ebs.get("KmsKeyId"):
                key = resolve_kms_key(account, region, ebs["KmsKeyId"])
            elif snap_encrypted and snap.kms_key_id:
                key = snap.kms_key_id
            else:
                key = ebs_keys.default_key_arn(self.ec2_backend)
        delete = ebs.get("DeleteOnTermination")
        if delete is None:
            delete = img.get("delete_on_termination", True)
        out[device] = {"size": int(size), "snapshot": snap, "volume_type": volume_type,
                       "iops": iops, "throughput": throughput, "encrypted": encrypted,
                       "kms_key_id": key, "delete_on_termination": bool(delete)}
    return out


def strip(self) -> None:
    """moto sees a 1 GiB placeholder per requested EBS device (replaced by apply())."""
    mappings = self._get_param("BlockDeviceMappings", []) or []
    if mappings:
        self.params["BlockDeviceMappings"] = [
            {"DeviceName": m.get("DeviceName"), "Ebs": {"VolumeSize": 1}}
            if m.get("Ebs") and m.get("NoDevice") is None else m
            for m in mappings]


def apply(backend: Any, instance: Any, wanted: dict[str, dict[str, Any]],
          volume_tags: dict[str, str]) -> None:
    current = dict(instance.get_block_device_mapping)
    for device, spec in wanted.items():
        if device in current:
            backend.detach_volume(current[device].volume_id, instance.id, device)
            backend.delete_volume(current[device].volume_id)
        snap = spec["snapshot"]
        snap_id = snap.id if snap is not None and snap.id in backend.snapshots else None
        volume = backend.create_volume(
            size=spec["size"], zone_name=instance.placement.zone, snapshot_id=snap_id,
            encrypted=spec["encrypted"], kms_key_id=spec["kms_key_id"],
            volume_type=spec["volume_type"], iops=spec["iops"], throughput=spec["throughput"])
        backend.attach_volume(volume.id, instance.id, device, spec["delete_on_termination"])
    if volume_tags:
        for _, bdt in instance.get_block_device_mapping:
            backend.get_volume(bdt.volume_id).add_tags(volume_tags)
