"""EventBridge events EC2 emits for AMIs, which moto never emits.

* `EC2 AMI State Change` (source aws.ec2) for available/failed/deregistered/disabled.
  The resource ARN has no account id (arn:aws:ec2:REGION::image/ami-...).
* `Tag Change on Resource` (source aws.tag) for images; ARN with the account id.

Events are put on the default bus of the image's account+region through moto's own
events backend (each rule's pattern matching and target delivery, e.g. SQS), in
exactly the shapes of the AWS samples (see tests/fixtures/events/ in the repository).
"""
from __future__ import annotations

import time
import uuid
from typing import Any


def _put(account: str, region: str, event: dict[str, Any]) -> None:
    from moto.events.models import events_backends

    backend = events_backends[account][region]
    bus = backend.describe_event_bus("default")
    for rule in list(bus.rules.values()):
        if getattr(rule, "state", "ENABLED") != "ENABLED":
            continue
        # moto's SQS delivery rewrites "time" (a unix timestamp) to the ISO form AWS
        # uses ("2026-11-22T03:10:41Z"). moto's input transformer needs an extra
        # "ingestion-time" key that real events do not carry, so it is only added
        # (and the transformer only run) for rules with a transformed target.
        if any(t.get("InputTransformer") for t in rule.targets):
            rule.send_to_targets({**event, "ingestion-time": event["time"]})
        else:
            rule.send_to_targets(dict(event), transform_input=False)


def _envelope(account: str, region: str, detail_type: str, source: str,
              resources: list[str], detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": time.time(),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def ami_state_change(account: str, region: str, image_id: str, state: str,
                     error_message: str = "") -> None:
    detail = {
        "RequestId": str(uuid.uuid4()),
        "ImageId": image_id,
        "State": state,
        "ErrorMessage": error_message,
    }
    _put(account, region, _envelope(
        account, region, "EC2 AMI State Change", "aws.ec2",
        [f"arn:aws:ec2:{region}::image/{image_id}"], detail))


def tag_change(account: str, region: str, image_id: str, changed_keys: list[str],
               tags: dict[str, str], version: int) -> None:
    detail = {
        "changed-tag-keys": changed_keys,
        "service": "ec2",
        "resource-type": "image",
        "version": version,
        "tags": tags,
    }
    _put(account, region, _envelope(
        account, region, "Tag Change on Resource", "aws.tag",
        [f"arn:aws:ec2:{region}:{account}:image/{image_id}"], detail))
