"""RunInstances: the instance gets the image's volumes, merged with the request's.

AWS: an instance's block device mapping is the AMI's mapping merged with the
`BlockDeviceMappings` of the request (same device name: the request's values win;
`NoDevice` removes an image device; new device names are added). moto instead gives
every instance one default 8 GiB `/dev/sda1` volume when the request has no mappings,
and ONLY the requested volumes when it has some: an instance launched with one extra
data volume then has no root volume, and an image made of it has none either.
Here, after moto has created the instance:
* no mappings requested and the image is known: moto's default volume is replaced by
  one volume per image device (size, type, encryption and key of its snapshot);
* mappings requested: every image device not named in the request is added.
RunInstances also sets the image's LastLaunchedTime (references.py).
"""
from __future__ import annotations

from typing import Any

from . import references, state, visibility
from .patching import handler, original


def image_devices(ami: Any | None, root_device: str) -> list[dict[str, Any]]:
    """The image's devices: {device, size, volume_type, snapshot, delete_on_termination}."""
    if ami is None:  # moto runs any id; AWS would refuse it: a plain 8 GiB root
        return [{"device": root_device, "size": 8, "volume_type": None, "snapshot": None,
                 "delete_on_termination": True}]
    entries = getattr(ami, "_emu_bdm", None)
    if entries is None:
        return [{"device": ami.root_device_name, "size": 15, "volume_type": "standard",
                 "snapshot": ami.ebs_snapshot, "delete_on_termination": True}]
    return entries


def add_device(backend: Any, instance: Any, e: dict[str, Any]) -> None:
    snap = e.get("snapshot")
    snap_id = snap.id if snap is not None and snap.id in backend.snapshots else None
    encrypted = bool(snap is not None and snap.encrypted)
    instance.add_block_device(int(e["size"]), e["device"], snap_id, encrypted,
                              bool(e.get("delete_on_termination", True)),
                              snap.kms_key_id if encrypted else None,
                              volume_type=e.get("volume_type"))


def merge_image_volumes(backend: Any, instance: Any, ami: Any | None,
                        requested: list[dict[str, Any]]) -> None:
    named = {b.get("DeviceName") for b in requested}
    if not requested:
        if ami is None:
            return  # moto's default root stands
        for device, bdt in instance.get_block_device_mapping:
            backend.detach_volume(bdt.volume_id, instance.id, device)
            backend.delete_volume(bdt.volume_id)
    present = {device for device, _ in instance.get_block_device_mapping}
    for e in image_devices(ami, instance.root_device_name):
        if e["device"] in present or e["device"] in named:
            continue  # requested values (or NoDevice) win over the image's
        add_device(backend, instance, e)


def run_instances(self):
    image_id = self._get_param("ImageId")
    requested = self._get_param("BlockDeviceMappings", []) or []
    result = original("run_instances")(self)
    account, region = self.current_account, self.region
    with state.LOCK:
        ami = visibility.find_image(account, region, image_id) if image_id else None
        if ami is not None:
            for instance in result.result.instances:
                instance.root_device_name = ami.root_device_name
                if ami.root_device_type == "instance-store":
                    instance.root_device_type = "instance-store"
        if not self._get_param("LaunchTemplate"):  # a template's own mappings: moto's
            for instance in result.result.instances:
                merge_image_volumes(self.ec2_backend, instance, ami, requested)
    if image_id:
        references.set_last_launched(account, region, image_id,
                                     state.iso(state.now()).replace(".000Z", "Z"))
    return result


def install() -> None:
    handler("run_instances")(run_instances)
