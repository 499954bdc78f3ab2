"""EBS snapshot lock: LockSnapshot, UnlockSnapshot, DescribeLockedSnapshots (moto has none).

The EBS User Guide ("Amazon EBS snapshot lock concepts", "Lock an Amazon EBS snapshot")
and the EC2 API reference:
* LockSnapshot locks an own snapshot (`pending` or `completed`) in `governance` or
  `compliance` mode for `LockDuration` days (1-36500) or until `ExpirationDate` -
  exactly one of the two; `CoolOffPeriod` (1-72 h) only in compliance mode. Relocking
  changes the lock: in governance mode or during the cooling-off period anything; in
  compliance mode after it only a later end.
* UnlockSnapshot: governance, or compliance still in its cooling-off period.
* DescribeLockedSnapshots: the caller's locked snapshots (SnapshotIds, MaxResults 5-1000
  with NextToken), LockState `governance` / `compliance` / `compliance-cooloff` /
  `expired` (the end has passed).
* A locked snapshot can't be deleted: DeleteSnapshot → `SnapshotLocked` (400), and
  DeregisterImage with DeleteAssociatedSnapshots keeps it (ReturnCode `client-error`,
  deregister.py asks `is_locked`). AWS documents the refusal; the code is our choice.

The lock lives on moto's snapshot object (`_emu_lock`), so a reset drops it with the
snapshot.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from moto.core.responses import ActionResult

from . import state
from .errors import Ec2Error
from .pagination import paginate
from .patching import handler, original


def _lock(snap: Any) -> dict | None:
    return getattr(snap, "_emu_lock", None)


def lock_state(lock: dict, now: datetime) -> str:
    if lock["expires"] <= now:
        return "expired"
    if lock["mode"] == "compliance" and lock.get("cooloff_until") and lock["cooloff_until"] > now:
        return "compliance-cooloff"
    return lock["mode"]


def is_locked(snap: Any) -> bool:
    lock = _lock(snap)
    return lock is not None and lock_state(lock, state.now()) != "expired"


def _own_snapshot(self, snapshot_id: str) -> Any:
    snap = self.ec2_backend.snapshots.get(snapshot_id)
    if snap is None:
        raise Ec2Error("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
    return snap


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return state.parse_iso(str(value))


def _info(snap: Any, lock: dict, now: datetime) -> dict:
    out = {
        "OwnerId": snap.owner_id,
        "SnapshotId": snap.id,
        "LockState": lock_state(lock, now),
        "LockCreatedOn": lock["created"],
        "LockDurationStartTime": lock["start"],
        "LockExpiresOn": lock["expires"],
    }
    if lock.get("duration"):
        out["LockDuration"] = lock["duration"]
    if lock.get("cooloff"):
        out["CoolOffPeriod"] = lock["cooloff"]
        out["CoolOffPeriodExpiresOn"] = lock["cooloff_until"]
    return out


def lock_snapshot(self):
    snapshot_id = self._get_param("SnapshotId")
    mode = self._get_param("LockMode")
    duration = self._get_param("LockDuration")
    expiration = self._get_param("ExpirationDate")
    cooloff = self._get_param("CoolOffPeriod")
    self.error_on_dryrun()
    if (duration in (None, "")) == (expiration in (None, "")):
        raise Ec2Error("InvalidParameterCombination",
                       "Specify exactly one of LockDuration and ExpirationDate.")
    if cooloff not in (None, "") and mode != "compliance":
        raise Ec2Error("InvalidParameterCombination",
                       "CoolOffPeriod can only be specified in compliance mode.")
    now = state.now()
    with state.LOCK:
        snap = _own_snapshot(self, snapshot_id)
        expires = now + timedelta(days=int(duration)) if duration not in (None, "") else _when(expiration)
        if expires <= now:
            raise Ec2Error("InvalidParameterValue", "The lock must end in the future.")
        old = _lock(snap)
        if old is not None and lock_state(old, now) == "compliance":
            if mode != "compliance" or expires < old["expires"]:
                raise Ec2Error("InvalidParameterValue",
                               f"The snapshot {snapshot_id} is locked in compliance mode after its "
                               "cooling-off period: the lock can only be extended.")
        lock = {
            "mode": mode,
            "created": old["created"] if old else now,
            "start": now,
            "expires": expires,
            "duration": int(duration) if duration not in (None, "") else None,
        }
        if cooloff not in (None, ""):
            lock["cooloff"] = int(cooloff)
            lock["cooloff_until"] = now + timedelta(hours=int(cooloff))
        elif old is not None and old.get("cooloff_until"):
            lock["cooloff"], lock["cooloff_until"] = old["cooloff"], old["cooloff_until"]
        snap._emu_lock = lock
        info = _info(snap, lock, now)
    info.pop("OwnerId")
    return ActionResult(info)


def unlock_snapshot(self):
    snapshot_id = self._get_param("SnapshotId")
    self.error_on_dryrun()
    with state.LOCK:
        snap = _own_snapshot(self, snapshot_id)
        lock = _lock(snap)
        if lock is not None and lock_state(lock, state.now()) == "compliance":
            raise Ec2Error("InvalidParameterValue",
                           f"The snapshot {snapshot_id} is locked in compliance mode after its "
                           "cooling-off period and can't be unlocked.")
        snap._emu_lock = None
    return ActionResult({"SnapshotId": snapshot_id})


def describe_locked_snapshots(self):
    ids = self._get_param("SnapshotIds", []) or []
    max_results = self._get_param("MaxResults")
    token = self._get_param("NextToken")
    now = state.now()
    with state.LOCK:
        snaps = [s for s in self.ec2_backend.snapshots.values()
                 if _lock(s) is not None and (not ids or s.id in ids)]
        page, next_token = paginate(snaps, max_results, token, 5, 1000)
        out = {"Snapshots": [_info(s, _lock(s), now) for s in page]}
    if next_token:
        out["NextToken"] = next_token
    return ActionResult(out)


def delete_snapshot(self):
    snapshot_id = self._get_param("SnapshotId")
    with state.LOCK:
        snap = self.ec2_backend.snapshots.get(snapshot_id)
        if snap is not None and is_locked(snap):
            raise Ec2Error("SnapshotLocked",
                           f"The snapshot '{snapshot_id}' is locked and can't be deleted until "
                           f"{state.iso(_lock(snap)['expires'])}.")
    return original("delete_snapshot")(self)


def install() -> None:
    for fn in (lock_snapshot, unlock_snapshot, describe_locked_snapshots, delete_snapshot):
        handler(fn.__name__)(fn)
