"""`FullSnapshotSizeInBytes` in DescribeSnapshots (moto never reports it).

EC2 reports, per snapshot, the size of every block written to the source volume when
the snapshot was taken (the EC2 API reference, Snapshot.FullSnapshotSizeInBytes); the
emulator models no writes, so it reports the field only for snapshots given one through
the control API (`POST /_emulator/snapshots/<id>/full-size {"bytes": N}`), as EC2 does
not for every snapshot. moto's serializer reads the attribute off its snapshot object.
"""
from __future__ import annotations

from . import state


def set_full_size(snapshot_id: str, size: int, account: str | None = None,
                  region: str | None = None) -> dict | None:
    with state.LOCK:
        for acct, reg, backend in state.iter_ec2_backends():
            if (account and acct != account) or (region and reg != region):
                continue
            snap = backend.snapshots.get(snapshot_id)
            if snap is not None:
                snap.full_snapshot_size_in_bytes = int(size)
                return {"snapshot_id": snapshot_id, "full_snapshot_size_in_bytes": int(size)}
    return None
