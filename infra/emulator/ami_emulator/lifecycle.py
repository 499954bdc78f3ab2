"""Image state transitions: pending -> available (after a delay) or -> failed.

moto creates images `available` at once, so a client never has to wait or poll and
no state-change event could ever be observed. Here CreateImage/CopyImage leave the
image `pending`; a ticker thread (every 100 ms) makes it `available` once
`pending_seconds` have passed and emits the `EC2 AMI State Change` event, even if
nobody describes the image. The control API can force a tick or a failure.
"""
from __future__ import annotations

import threading
import time

from . import events, state

TICK_SECONDS = 0.1
_started = False


def mark_pending(account: str, region: str, ami) -> None:
    ami.state = "pending"
    ready_at = time.time() + float(state.SETTINGS.get("pending_seconds") or 0.0)
    state.PENDING[(account, region, ami.id)] = ready_at


def tick() -> list[str]:
    """Make every due pending image available; returns their ids."""
    done = []
    with state.LOCK:
        now = time.time()
        for key, ready_at in list(state.PENDING.items()):
            if ready_at > now:
                continue
            account, region, image_id = key
            state.PENDING.pop(key, None)
            ami = state.ec2_backend(account, region).amis.get(image_id)
            if ami is None or ami.state != "pending":
                continue
            ami.state = "available"
            events.ami_state_change(account, region, image_id, "available")
            done.append(image_id)
    return done


def fail(image_id: str, message: str = "Description of failure") -> bool:
    with state.LOCK:
        for key in list(state.PENDING):
            account, region, iid = key
            if iid != image_id:
                continue
            state.PENDING.pop(key)
            ami = state.ec2_backend(account, region).amis.get(image_id)
            if ami is None:
                return False
            ami.state = "failed"
            ami.state_reason = {"Code": "Client.UserInitiated", "Message": message}
            events.ami_state_change(account, region, image_id, "failed", message)
            return True
    return False


def _loop() -> None:
    while True:
        time.sleep(TICK_SECONDS)
        try:
            tick()
        except Exception:  # keep ticking; a reset may race with a tick
            pass


def start_ticker() -> None:
    global _started
    if not _started:
        _started = True
        threading.Thread(target=_loop, name="ami-ticker", daemon=True).start()
