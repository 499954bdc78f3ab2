"""`Parameter Store Change` events (source aws.ssm), which moto never emits.

Shapes as the Systems Manager user guide documents them ("Parameter Store events" in
"Amazon EventBridge event examples for Systems Manager"; sample in
tests/fixtures/events/parameter-store-change-update.json of the repository):

* a change: `detail: {operation, name, type, description?}` with `operation` one of
  `Create`, `Update`, `Delete`, `LabelParameterVersion`; `description` only when the
  parameter has one;
* a failed asynchronous `aws:ec2:image` validation ("Native parameter support for Amazon
  Machine Image IDs", troubleshooting "Unable to Describe Resource"):
  `detail: {exception: "Unable to Describe Resource", dataType: "aws:ec2:image", name,
  type: "String", operation: "Create"|"Update"}`.

`resources` holds the parameter ARN (`arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`, one
slash whatever the name's leading slash). Events go onto the default bus of the
parameter's account+region through events.py (moto's rule matching and targets).
"""
from __future__ import annotations

from typing import Any

from . import events

DETAIL_TYPE = "Parameter Store Change"
SOURCE = "aws.ssm"
INVALID_IMAGE_EXCEPTION = "Unable to Describe Resource"


def _arn(account: str, region: str, name: str) -> str:
    from moto.ssm.utils import parameter_arn

    return parameter_arn(account, region, name)


def parameter_change(account: str, region: str, name: str, operation: str,
                     parameter_type: str, description: str | None = None) -> None:
    detail: dict[str, Any] = {"operation": operation, "name": name, "type": parameter_type}
    if description:
        detail["description"] = description
    events._put(account, region, events._envelope(
        account, region, DETAIL_TYPE, SOURCE, [_arn(account, region, name)], detail))


def image_validation_failed(account: str, region: str, name: str, operation: str) -> None:
    detail = {
        "exception": INVALID_IMAGE_EXCEPTION,
        "dataType": "aws:ec2:image",
        "name": name,
        "type": "String",
        "operation": operation,
    }
    events._put(account, region, events._envelope(
        account, region, DETAIL_TYPE, SOURCE, [_arn(account, region, name)], detail))
