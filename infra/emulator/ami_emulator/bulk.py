"""Bulk seeding for benchmarks: `POST /_emulator/seed-images`.

Creates N images (each with its own EBS snapshots, tagged) directly in moto's backend,
without going through CreateImage: seeding 50,000 images through the API would take
longer than the benchmark it feeds. The images look exactly like ones CreateImage made
(`ec2_images.set_bdm`, real moto snapshots), so DescribeImages, DeregisterImage with
`DeleteAssociatedSnapshots`, CopyImage, paging and tags all work on them.

Body (JSON; defaults shown):

    {"region": "us-east-1", "account": "123456789012", "count": 1,
     "snapshots_per_image": 2, "snapshot_size": 8, "state": "available",
     "name_prefix": "seed", "lineages": 1,
     "slot_start": "2026-01-01T00:00:00Z", "slot_step_seconds": 3600,
     "tags": {}, "snapshot_tags": {}, "return_ids": true,
     "seal": null}

Tag values may use `{i}` (image index from 0), `{lineage}` (`i % lineages`), `{n}`
(index within its lineage, `i // lineages`) and `{slot}` (`slot_start + n *
slot_step_seconds`, RFC 3339). Each image is named `<name_prefix>-<i>` plus a random
suffix (unique per call). `state` is `available` or `pending` (pending ones become
available through the normal lifecycle ticker after `pending_seconds`).

`seal` (`{"deployment": "ami-lifecycle", "key": "alias/ami-lifecycle-seal"}`, plus
`"key_region"` when the key is in another region, the suite's home; a key ARN names its own
account and region, so a hub's key seals images seeded in a spoke account) makes the images as
the suite's create-image would: EC2's `SourceInstanceId` is the image's
`ami-lifecycle:source-instance` tag, and `ami-lifecycle:seal` is the HMAC (moto's KMS,
that key) over the suite's v2 seal subject, which names the seeded account (`shared/src/seal.rs`,
`Subject::image`; the Rust
test `tests/security.rs` checks that the suite verifies what this writes).

Answer: `{"count": N, "snapshots": M, "seconds": t, "image_ids": [...]}` (ids left out
with `"return_ids": false`).

[`install`] also replaces moto's per-resource tag lookup (`TaggedEC2Resource.get_tags`),
which scans every tag of the region for each resource (`describe_tags` with a
`resource-id` filter): a DescribeImages page of 1,000 images out of 5,000 took ~40 s,
quadratic in the inventory. The replacement reads the resource's own entry of the same
`backend.tags` dict and returns the same list (same keys, same order), so behaviour is
unchanged; only inventories of thousands become usable.
"""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from . import state

DEFAULT_ACCOUNT = "123456789012"
MAX_COUNT = 100_000


class SeedError(ValueError):
    pass


def _parse(body: dict[str, Any]) -> dict[str, Any]:
    known = {"region", "account", "count", "snapshots_per_image", "snapshot_size", "state",
             "name_prefix", "lineages", "slot_start", "slot_step_seconds", "tags",
             "snapshot_tags", "return_ids", "seal"}
    unknown = set(body) - known
    if unknown:
        raise SeedError(f"unknown keys {sorted(unknown)}; accepted: {sorted(known)}")
    spec = {
        "region": str(body.get("region", "us-east-1")),
        "account": str(body.get("account", DEFAULT_ACCOUNT)),
        "count": body.get("count", 1),
        "snapshots_per_image": body.get("snapshots_per_image", 2),
        "snapshot_size": body.get("snapshot_size", 8),
        "state": body.get("state", "available"),
        "name_prefix": str(body.get("name_prefix", "seed")),
        "lineages": body.get("lineages", 1),
        "slot_start": body.get("slot_start", "2026-01-01T00:00:00Z"),
        "slot_step_seconds": body.get("slot_step_seconds", 3600),
        "tags": body.get("tags", {}) or {},
        "snapshot_tags": body.get("snapshot_tags", {}) or {},
        "return_ids": bool(body.get("return_ids", True)),
        "seal": body.get("seal"),
    }
    seal = spec["seal"]
    if seal is not None and (not isinstance(seal, dict)
                             or not {"deployment", "key"} <= set(seal) <= {"deployment", "key", "key_region"}
                             or not all(isinstance(v, str) for v in seal.values())):
        raise SeedError('seal: expected {"deployment": "...", "key": "alias/...", "key_region": "..."} (key_region optional)')
    for k, lo, hi in (("count", 1, MAX_COUNT), ("snapshots_per_image", 0, 16),
                      ("snapshot_size", 1, 16384), ("lineages", 1, MAX_COUNT),
                      ("slot_step_seconds", 0, 10**9)):
        v = spec[k]
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise SeedError(f"{k}={v!r}: expected a whole number from {lo} to {hi}")
    if spec["state"] not in ("available", "pending"):
        raise SeedError(f"state={spec['state']!r}: expected available or pending")
    for k in ("tags", "snapshot_tags"):
        if not isinstance(spec[k], dict) or not all(isinstance(x, str) for kv in spec[k].items() for x in kv):
            raise SeedError(f"{k}: expected an object of string values")
    try:
        spec["slot_start"] = state.parse_iso(str(spec["slot_start"]))
    except ValueError as e:
        raise SeedError(f"slot_start={body.get('slot_start')!r}: not an RFC 3339 time ({e})") from None
    return spec


def _fill(template: dict[str, str], values: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in template.items():
        try:
            out[k] = v.format(**values) if "{" in v else v
        except (KeyError, IndexError, ValueError) as e:
            raise SeedError(f"tag {k}={v!r}: bad placeholder ({e}); use {{i}}, {{lineage}}, {{n}}, {{slot}}") from None
    return out


def _seal_subject(deployment: str, owner: str, region: str, name: str, tags: dict[str, str]) -> bytes:
    """The suite's seal subject of an image (`Subject::image` in shared/src/seal.rs, v2: it
    names the owning account, so an image seeded in a spoke verifies there and nowhere else)."""
    def tag(k):
        v = tags.get(k, "").strip()
        return v or None

    if tag("ami-lifecycle:source-instance"):
        lineage = f"instance {tag('ami-lifecycle:source-instance')} {tag('ami-lifecycle:schedule') or '-'}"
    elif tag("ami-lifecycle:source-account"):
        lineage = f"adopted {tag('ami-lifecycle:source-account')} {tag('ami-lifecycle:source-image') or ''}"
    else:
        lineage = "-"
    fields = ["ami-lifecycle seal v2 image", deployment, owner, region, name, lineage,
              tags.get("ami-lifecycle:slot", "").strip()]
    return "\n".join(f.replace("\n", " ") for f in fields).encode()


def _sealer(account: str, region: str, seal: dict[str, str] | None):
    if seal is None:
        return None
    from moto.kms.models import kms_backends

    region = seal.get("key_region", region)
    # A key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) is that account's key, as KMS reads it.
    arn = seal["key"].split(":")
    if len(arn) >= 6 and arn[0] == "arn" and arn[2] == "kms":
        region, account = arn[3], arn[4]
    kms = kms_backends[account][region]
    try:
        key_id = kms.any_id_to_key_id(seal["key"])
        kms.keys[key_id]
    except Exception:
        raise SeedError(f"seal.key {seal['key']!r}: no such KMS key in {region} (POST /_emulator/seal-key first)") from None

    def mac(message: bytes) -> str:
        value, _, _ = kms.generate_mac(message=message, key_id=key_id, mac_algorithm="HMAC_SHA_256",
                                       grant_tokens=[], dry_run=False)
        return "v2:" + value

    return mac


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(body: dict[str, Any]) -> dict[str, Any]:
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    from . import ec2_images, lifecycle

    spec = _parse(body)
    started = time.monotonic()
    ids: list[str] = []
    snapshots = 0
    suffix = secrets.token_hex(3)
    mac = _sealer(spec["account"], spec["region"], spec["seal"])
    with state.LOCK:
        backend = state.ec2_backend(spec["account"], spec["region"])
        zone = f"{spec['region']}a"
        for i in range(spec["count"]):
            lineage, n = i % spec["lineages"], i // spec["lineages"]
            slot = spec["slot_start"] + timedelta(seconds=n * spec["slot_step_seconds"])
            values = {"i": i, "lineage": lineage, "n": n, "slot": _rfc3339(slot)}
            ami_id = random_ami_id()
            ami = Ami(backend, ami_id, name=f"{spec['name_prefix']}-{i}-{suffix}",
                      description="seeded by /_emulator/seed-images", region_name=zone,
                      root_device_name="/dev/xvda", architecture="x86_64",
                      virtualization_type="hvm", state=spec["state"])
            ami.root_device_type = "ebs"
            ec2_images.drop_synthetic_snapshot(backend, ami)
            snap_tags = _fill(spec["snapshot_tags"], values)
            entries = []
            for d in range(spec["snapshots_per_image"]):
                device = "/dev/xvda" if d == 0 else f"/dev/sd{chr(ord('f') + d - 1)}"
                snap = ec2_images.new_snapshot(backend, ami_id, spec["snapshot_size"], False, None,
                                               f"Created by seed-images for {ami_id}", snap_tags)
                entries.append({"device": device, "snapshot": snap, "size": spec["snapshot_size"],
                                "volume_type": "gp3", "delete_on_termination": True})
            snapshots += len(entries)
            ec2_images.set_bdm(ami, entries)
            tags = _fill(spec["tags"], values)
            if mac is not None:
                ami.instance_id = tags.get("ami-lifecycle:source-instance")
                subject = _seal_subject(spec["seal"]["deployment"], spec["account"], spec["region"], ami.name, tags)
                tags["ami-lifecycle:seal"] = mac(subject)
            for k, v in tags.items():
                ami.add_tag(k, v)
            backend.amis[ami_id] = ami
            if spec["state"] == "pending":
                lifecycle.mark_pending(spec["account"], spec["region"], ami)
            ids.append(ami_id)
    answer: dict[str, Any] = {"count": len(ids), "snapshots": snapshots,
                              "seconds": round(time.monotonic() - started, 3)}
    if spec["return_ids"]:
        answer["image_ids"] = ids
    return answer


def handle(body: dict[str, Any], respond) -> list[bytes]:
    """The control endpoint: 200 with the answer, 400 naming what is wrong in the body."""
    try:
        return respond(200, seed(body))
    except SeedError as e:
        return respond(400, {"error": f"seed-images: {e}"})


def _get_tags(self) -> list[dict[str, str]]:
    """moto's TaggedEC2Resource.get_tags without the scan of every resource's tags."""
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    rid = getattr(self, "id", None)
    if not rid:
        return []
    tags = self.ec2_backend.tags.get(rid)
    if not tags:
        return []
    rtype = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
    return [{"resource_id": rid, "key": k, "value": v, "resource_type": rtype}
            for k, v in list(tags.items())]


def install() -> None:
    from moto.ec2.models.core import TaggedEC2Resource

    TaggedEC2Resource.get_tags = _get_tags
