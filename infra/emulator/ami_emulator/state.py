"""Shared extension state and helpers.

moto keeps its models in per-account/per-region backends and is not thread-safe;
our ticker thread and the threaded HTTP server both mutate those models, so all
work against moto happens under LOCK. Extension state that does not live on moto's
model objects (reboots, copy client tokens, pending transitions) is kept here and
cleared by reset().
"""
from __future__ import annotations

import copy
import threading
from datetime import datetime, timezone
from typing import Any

LOCK = threading.RLock()

# (account, region, image_id) -> monotonic-ish wall clock time at which it becomes available
PENDING: dict[tuple[str, str, str], float] = {}
# instance id -> [{"image_id", "time"}]
REBOOTS: dict[str, list[dict[str, str]]] = {}
# (account, region, client_token) -> (source_region, source_image_id, image_id)
COPY_TOKENS: dict[tuple[str, str, str], tuple[str, str, str]] = {}
# (account, region, image_id) -> tag-change version counter
TAG_VERSIONS: dict[tuple[str, str, str], int] = {}

# Emulator settings that are not fault-layer settings (the control API merges into these).
DEFAULT_SETTINGS: dict[str, Any] = {
    "pending_seconds": 0.0,   # pending -> available delay for CreateImage/CopyImage
    "copy_cap": None,         # max concurrent pending copies per destination region
    "latency_ms": 0,          # added to every EC2 call
    "buckets": False,         # EC2 token-bucket throttling on/off
    "time_scale": 1.0,        # multiplies bucket refill rates (sizes unchanged)
    "error_rates": {},        # {"<Action or *>": {"<ErrorCode>": rate}}
    "seed": None,             # seed for the injected-error random generator
    "crash": [],              # [{"action", "nth", "when": "before"|"after"}]
    "strict": True,           # check every request against the API model (validation.py)
    "clock_offset_seconds": 0.0,  # added to the clock that stamps CreationDate (simulations)
    "reboot_seconds": 0.0,    # status checks `initializing` this long after a CreateImage reboot
    "ami_quota": None,        # AMIs per account and region (CreateImage, CopyImage); None = no limit
    "usage_report_delay_seconds": 0.0,  # image usage report pending -> available (usage_reports.py)
    "launch_status_seconds": 0.0,  # status checks `initializing` this long after launch/start
    "stop_seconds": 0.0,      # StopInstances: `stopping` this long, then `stopped` (instance_stop.py)
    "fast_xml": True,         # DescribeImages/DescribeSnapshots written by fast_xml.py (False: moto's serializer)
}


def creation_clock():
    """The emulator's clock for what AWS stamps (an image's CreationDate): the real clock
    plus `clock_offset_seconds`, so a simulation running days ahead makes images that are
    created after the slot they stand for, as on AWS."""
    from datetime import timedelta

    from moto.core.utils import utcnow

    return utcnow() + timedelta(seconds=float(SETTINGS.get("clock_offset_seconds") or 0.0))
SETTINGS: dict[str, Any] = copy.deepcopy(DEFAULT_SETTINGS)


def reset() -> None:
    with LOCK:
        PENDING.clear()
        REBOOTS.clear()
        COPY_TOKENS.clear()
        TAG_VERSIONS.clear()
        SETTINGS.clear()
        SETTINGS.update(copy.deepcopy(DEFAULT_SETTINGS))


def ec2_backend(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def iter_ec2_backends():
    """Yield (account, region, backend) for every backend moto has instantiated."""
    from moto.ec2.models import ec2_backends

    for account, regions in list(ec2_backends.items()):
        for region, backend in list(regions.items()):
            yield account, region, backend


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_iso(value: str) -> datetime:
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def truthy(value: Any) -> bool:
    return str(value).lower() == "true"
