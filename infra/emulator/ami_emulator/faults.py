"""Fault layer for EC2 calls (WSGI middleware in front of moto).

moto never throttles, never fails and answers instantly, so retry/back-off and
crash-recovery code is never exercised. This layer, configured at run time through
the control API, adds for EC2 only (KMS, EventBridge, SQS pass through untouched):
* EC2's published token buckets per account+region (sizes/refill rates from
  AWS-NOTES.md; `time_scale` multiplies refill rates, sizes unchanged); an empty
  bucket answers `RequestLimitExceeded` (HTTP 503);
* added latency per call (`latency_ms`);
* injected errors per action or `*` at given rates, reproducible with `seed`
  (InternalError 500, Unavailable 503, RequestLimitExceeded 503,
  ResourceLimitExceeded 400);
* crash switch: the Nth call of an action fails with HTTP 500 InternalError either
  before it is applied or after it is applied (change made, client sees an error);
* per-region per-action counters: every call, throttled ones, injected ones.
An EC2 request is a POST whose form body has Action=...; the region and service
come from the SigV4 credential scope (Credential=AKID/DATE/REGION/SERVICE/...).
"""
from __future__ import annotations

import io
import random
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from . import accounts, state
from .accounts import SCOPE_RE
from .errors import wsgi_error


STATUS = {"InternalError": 500, "Unavailable": 503, "RequestLimitExceeded": 503,
          "ResourceLimitExceeded": 400, "ServiceUnavailable": 503}

# bucket name -> (size, refill per second). Own buckets for the listed actions,
# shared category buckets otherwise (as EC2 groups actions).
OWN_BUCKETS = {
    "CopyImage": (100, 1),
    "DeregisterImage": (100, 5),
    "DeleteSnapshot": (100, 5),
    "ModifyImageAttribute": (100, 5),
    "ModifySnapshotAttribute": (100, 5),
    "CreateTags": (100, 10),
}
NON_MUTATING = (100, 20)
UNFILTERED = (50, 10)
MUTATING = (50, 5)
UNFILTERED_ACTIONS = {"DescribeInstances", "DescribeSnapshots"}

_lock = threading.Lock()
_buckets: dict[tuple[str, str, str], list[float]] = {}   # key -> [tokens, last_time]
# async_failed: calls AWS answers 200 whose asynchronous check then fails (nothing stored),
# e.g. ssm:PutParameter of an invalid aws:ec2:image value (ssm_parameters.py).
_counters: dict[str, dict[str, dict[str, int]]] = {"calls": {}, "throttled": {}, "injected": {},
                                                   "refused": {}, "async_failed": {}, "fast_xml": {}}
_crash_seen: dict[str, int] = {}
_rng = random.Random()


def bucket_for(action: str, params: dict[str, list[str]]) -> tuple[str, tuple[int, int]]:
    if action in OWN_BUCKETS:
        return action, OWN_BUCKETS[action]
    if action in UNFILTERED_ACTIONS:
        narrowed = any(k.startswith(("Filter.", "MaxResults", "NextToken", "InstanceId",
                                     "SnapshotId", "Owner", "RestorableBy")) for k in params)
        return ("non-mutating", NON_MUTATING) if narrowed else ("unfiltered", UNFILTERED)
    if action.startswith(("Describe", "Get", "List")):
        return "non-mutating", NON_MUTATING
    return "mutating", MUTATING


def take_token(account: str, region: str, action: str, params, now: float | None = None) -> bool:
    """Takes one token of the action's bucket as of `now` (the request's arrival; default:
    the current time). Requests of several threads may get here out of arrival order: a
    bucket never refills backwards."""
    name, (size, rate) = bucket_for(action, params)
    scale = float(state.SETTINGS.get("time_scale") or 1.0)
    if now is None:
        now = time.monotonic()
    with _lock:
        b = _buckets.setdefault((account, region, name), [float(size), now])
        if now > b[1]:
            b[0] = min(float(size), b[0] + (now - b[1]) * rate * scale)
            b[1] = now
        if b[0] >= 1.0:
            b[0] -= 1.0
            return True
        return False


def count(kind: str, region: str, action: str) -> None:
    with _lock:
        per = _counters[kind].setdefault(region, {})
        per[action] = per.get(action, 0) + 1


def counters() -> dict[str, Any]:
    with _lock:
        return {k: {r: dict(v) for r, v in per.items()} for k, per in _counters.items()}


def reset_counters() -> None:
    with _lock:
        for per in _counters.values():
            per.clear()


def reset_all() -> None:
    reset_counters()
    with _lock:
        _buckets.clear()
        _crash_seen.clear()


def on_config_change(changed: dict[str, Any]) -> None:
    with _lock:
        if "seed" in changed:
            _rng.seed(changed["seed"])
        if "crash" in changed:
            _crash_seen.clear()
        if "buckets" in changed or "time_scale" in changed:
            _buckets.clear()  # start full, as after a quiet period


def pick_injected(action: str) -> str | None:
    rates = state.SETTINGS.get("error_rates") or {}
    with _lock:
        for key in (action, "*"):
            for code, rate in (rates.get(key) or {}).items():
                if _rng.random() < float(rate):
                    return code
    return None


def crash_for(action: str) -> str | None:
    plans = [c for c in (state.SETTINGS.get("crash") or []) if c.get("action") == action]
    if not plans:
        return None
    with _lock:
        _crash_seen[action] = _crash_seen.get(action, 0) + 1
        n = _crash_seen[action]
    for plan in plans:
        if int(plan.get("nth", 1)) == n:
            return plan.get("when", "before")
    return None


class FaultMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        # The bucket is asked as of the request's arrival, before the added latency and
        # before parsing: how long this process takes to get to the check (a busy
        # interpreter, the latency sleep's wake-up) is the emulator's own delay and must
        # not move the request later or earlier against the client's pacing.
        arrived = time.monotonic()
        m = SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if environ.get("REQUEST_METHOD") != "POST" or not m or m.group(2) != "ec2":
            return self.app(environ, start_response)
        region = m.group(1)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        params = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        action = (params.get("Action") or [""])[0]
        if not action:
            return self.app(environ, start_response)
        account = accounts.account_of(environ)

        count("calls", region, action)
        allowed = not state.SETTINGS.get("buckets") or take_token(account, region, action,
                                                                 params, arrived)
        latency = int(state.SETTINGS.get("latency_ms") or 0)
        if latency > 0:
            time.sleep(latency / 1000.0)  # a refusal takes the round trip too
        if not allowed:
            count("throttled", region, action)
            return wsgi_error(start_response, 503, "RequestLimitExceeded", "Request limit exceeded.")
        code = pick_injected(action)
        if code:
            count("injected", region, action)
            return wsgi_error(start_response, STATUS.get(code, 400), code,
                              f"Injected {code} by the emulator fault layer.")
        when = crash_for(action)
        if when == "before":
            count("injected", region, action)
            return wsgi_error(start_response, 500, "InternalError",
                              "Injected crash before applying the request.")
        with state.LOCK:  # moto is not thread-safe; the ticker shares this lock
            if when == "after":
                # Apply the change, throw the real answer away, report a failure.
                chunks = self.app(environ, lambda *a, **k: None)
                b"".join(chunks)
                if hasattr(chunks, "close"):
                    chunks.close()
                count("injected", region, action)
                return wsgi_error(start_response, 500, "InternalError",
                                  "Injected crash after applying the request.")
            return list(self.app(environ, start_response))
