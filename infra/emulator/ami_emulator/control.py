"""The emulator's control API under /_emulator/ (JSON in, JSON out).

Lets tests and demos steer what AWS does on its own (state transitions, failures,
throttling, LastLaunchedTime) and observe what AWS does not expose (reboots,
per-action call counters). See README.md for the contract.
"""
from __future__ import annotations

import json
import re

from . import (block_public_access, bulk, health, faults, lifecycle, organizations, product_codes,
               references,
               snapshot_size, ssm_commands, ssm_managed, state, timeline, usage_reports)

CONFIG_KEYS = set(state.DEFAULT_SETTINGS)


def _json(start_response, status: int, payload) -> list[bytes]:
    body = json.dumps(payload).encode()
    reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
    start_response(f"{status} {reasons.get(status, 'Error')}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _body(environ) -> dict:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    return json.loads(raw or b"{}")


def reset_everything() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    with state.LOCK:
        moto_api_backend.reset()  # our own state too: see install()


def install() -> None:
    """moto's reset (`POST /moto-api/reset`, used by moto-based harnesses and by
    /_emulator/reset) also clears the emulator's state: copy client tokens, pending
    images, tag-event versions, reboots, config and fault settings, counters. Product
    codes and the default-EBS-key choice live on moto's models and go with them.
    Without this a reused client token would return an image that no longer exists."""
    from moto.moto_api._internal.models import MotoAPIBackend

    moto_reset = MotoAPIBackend.reset

    def reset(self) -> None:
        with state.LOCK:
            moto_reset(self)
            state.reset()
            faults.reset_all()
            block_public_access.reset()
            health.reset()
            ssm_managed.reset()
            ssm_commands.reset()
            timeline.reset()
            organizations.reset()
            usage_reports.reset()

    MotoAPIBackend.reset = reset


def seal_key(account: str, region: str, alias: str) -> dict:
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    try:
        key = backend.describe_key(alias)
    except Exception:
        key = backend.create_key(
            policy=None,
            key_usage="GENERATE_VERIFY_MAC",
            key_spec="HMAC_256",
            description="ami-lifecycle seal key (emulator set-up)",
            tags=None,
        )
        backend.create_alias(key.id, alias)
    return {"arn": key.arn, "alias": alias, "key_spec": key.key_spec, "key_usage": key.key_usage}


def _instance_exists(instance_id: str) -> bool:
    return any(inst.id == instance_id
               for _, _, backend in state.iter_ec2_backends()
               for reservation in list(backend.reservations.values())
               for inst in reservation.instances)


def _ssm_instance(start_response, instance_id: str, method: str, body: dict):
    """The SSM Agent of an instance (ssm_managed.py): GET what it is, POST to change it."""
    if method == "GET":
        agent = ssm_managed.AGENTS.get(instance_id)
        return _json(start_response, 200, agent.describe(instance_id) if agent
                     else {"instance_id": instance_id, "managed": False})
    with state.LOCK:
        if not _instance_exists(instance_id):
            return _json(start_response, 404, {"error": f"instance {instance_id} does not exist in any "
                                                        "account or region: launch it first (RunInstances)"})
        try:
            return _json(start_response, 200, ssm_managed.configure(instance_id, body))
        except ValueError as e:
            return _json(start_response, 400, {"error": f"{instance_id}: {e}"})


def _timeline(instance_id: str) -> list[dict]:
    """The instance's timeline; each command entry with its invocation's status now."""
    out = timeline.entries(instance_id)
    for entry in out:
        if entry["kind"] == "command":
            entry["status"] = ssm_commands.invocation_status(
                _account_of(instance_id), entry["region"], entry["command_id"], instance_id)
    return out


def _account_of(instance_id: str) -> str:
    for account, _, backend in state.iter_ec2_backends():
        for reservation in list(backend.reservations.values()):
            if any(inst.id == instance_id for inst in reservation.instances):
                return account
    return "123456789012"


def handle(environ, start_response):
    path = environ.get("PATH_INFO", "")[len("/_emulator"):].rstrip("/")
    method = environ.get("REQUEST_METHOD", "GET")
    try:
        body = _body(environ) if method == "POST" else {}
    except ValueError:
        return _json(start_response, 400, {"error": "body must be JSON"})

    if path == "/config":
        if method == "POST":
            unknown = set(body) - CONFIG_KEYS
            if unknown:
                return _json(start_response, 400, {"error": f"unknown keys {sorted(unknown)}"})
            state.SETTINGS.update(body)
            faults.on_config_change(body)
        return _json(start_response, 200, state.SETTINGS)
    if path == "/counters" and method == "GET":
        return _json(start_response, 200, faults.counters())
    if path == "/counters/reset" and method == "POST":
        faults.reset_counters()
        return _json(start_response, 200, faults.counters())
    if path == "/reboots" and method == "GET":
        with state.LOCK:
            return _json(start_response, 200, state.REBOOTS)
    if path == "/tick" and method == "POST":
        return _json(start_response, 200, {"available": lifecycle.tick()})
    if path == "/seed-images" and method == "POST":  # bulk.py: benchmark seeding
        return bulk.handle(body, lambda status, payload: _json(start_response, status, payload))
    if path == "/reset" and method == "POST":
        reset_everything()
        return _json(start_response, 200, {"reset": True})
    if path == "/seal-key" and method == "POST":
        # Test set-up, as a deployment's stack would make it: the HMAC key that seals what
        # the suite makes (KeySpec HMAC_256, KeyUsage GENERATE_VERIFY_MAC), under an alias.
        # Idempotent: the same alias answers the same key.
        return _json(start_response, 200, seal_key(
            body.get("account", "123456789012"),
            body.get("region", "us-east-1"),
            body.get("alias", "alias/ami-lifecycle-seal"),
        ))
    if path == "/organizations/seed" and method == "POST":
        try:
            return _json(start_response, 200, organizations.seed(body))
        except (ValueError, KeyError, TypeError) as e:
            return _json(start_response, 400, {"error": str(e)})
    m = re.fullmatch(r"/organizations/accounts/(\d{12})/status", path)
    if m and method == "POST":
        try:
            return _json(start_response, 200, organizations.set_status(m.group(1), body.get("status")))
        except ValueError as e:
            return _json(start_response, 400, {"error": str(e)})
        except KeyError as e:
            return _json(start_response, 404, {"error": e.args[0]})
    m = re.fullmatch(r"/image-usage-reports/(amiur-[0-9a-f]+)/fail", path)
    if m and method == "POST":
        found = usage_reports.fail(m.group(1), str(body.get("reason", "Internal error")))
        if found is None:
            return _json(start_response, 404, {"error": f"{m.group(1)}: no such image usage report"})
        return _json(start_response, 200, found)
    m = re.fullmatch(r"/instances/(i-[0-9a-f]+)/health", path)
    if m and method == "POST":
        impaired = body.get("impaired")
        if not isinstance(impaired, bool):
            return _json(start_response, 400, {"error": 'body must be {"impaired": true|false}'})
        health.set_impaired(m.group(1), impaired)
        return _json(start_response, 200, {"instance_id": m.group(1), "impaired": impaired})
    m = re.fullmatch(r"/ssm/instances/(i-[0-9a-f]+)", path)
    if m and method in ("GET", "POST"):
        return _ssm_instance(start_response, m.group(1), method, body)
    m = re.fullmatch(r"/instances/(i-[0-9a-f]+)/timeline", path)
    if m and method == "GET":
        return _json(start_response, 200, {"instance_id": m.group(1), "timeline": _timeline(m.group(1))})
    m = re.fullmatch(r"/snapshots/(snap-[0-9a-z]+)/full-size", path)
    if m and method == "POST":
        size = body.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return _json(start_response, 400, {"error": 'body must be {"bytes": <non-negative integer>}'})
        found = snapshot_size.set_full_size(m.group(1), size, body.get("account"), body.get("region"))
        if found is None:
            return _json(start_response, 404, {"error": f"{m.group(1)} not found"})
        return _json(start_response, 200, found)
    m = re.fullmatch(r"/images/(ami-[0-9a-z]+)/product-codes", path)
    if m and method == "POST":
        try:
            codes = product_codes.parse(body.get("product_codes"))
        except ValueError as e:
            return _json(start_response, 400, {"error": str(e)})
        found = product_codes.set_codes(m.group(1), codes, body.get("account"), body.get("region"))
        if found is None:
            return _json(start_response, 404, {"error": f"{m.group(1)} not found"})
        return _json(start_response, 200, found)
    m = re.fullmatch(r"/images/(ami-[0-9a-z]+)/(fail|last-launched)", path)
    if m and method == "POST":
        image_id, what = m.groups()
        if what == "fail":
            ok = lifecycle.fail(image_id, body.get("message", "Description of failure"))
            if not ok:
                return _json(start_response, 404, {"error": f"{image_id} is not pending"})
            return _json(start_response, 200, {"image_id": image_id, "state": "failed"})
        when = body.get("time")
        if not when:
            return _json(start_response, 400, {"error": "time required"})
        account = body.get("account", "123456789012")
        region = body.get("region")
        regions = [region] if region else [r for a, r, _ in state.iter_ec2_backends() if a == account]
        for r in regions:
            if references.set_last_launched(account, r, image_id, when):
                return _json(start_response, 200, {"image_id": image_id, "last_launched_time": when})
        return _json(start_response, 404, {"error": f"{image_id} not found"})
    return _json(start_response, 404, {"error": f"no such control endpoint {method} {path}"})


class ControlMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/_emulator/"):
            return handle(environ, start_response)
        return self.app(environ, start_response)


class AccountMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        from . import accounts

        accounts.apply(environ)
        return self.app(environ, start_response)
