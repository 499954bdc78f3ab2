"""SSM Parameter Store as AWS runs it for `aws:ec2:image` parameters, labels and events.

moto stores any value under `DataType=aws:ec2:image` and lets a parameter change data
type; it accepts labels starting with "AWS"/"SSM" in any case but lower; and a label
call on an unknown name leaves an empty entry behind that later answers 500. Patched
here on moto's `SimpleSystemManagerResponse` (handlers `put_parameter`,
`label_parameter_version`, `unlabel_parameter_version`, `delete_parameter`,
`delete_parameters`):

* PutParameter `DataType=aws:ec2:image` ("Native parameter support for Amazon Machine
  Image IDs", PutParameter `DataType`): only `Type=String` (else `ValidationException`).
  The value must be an AMI id (`ami-` + 8 or 17 hex digits) of an image in the
  parameter's region that the account may launch (own, shared with it, or public) and
  that is `available`. AWS checks this asynchronously: the call answers 200 with the
  version it would have made, and an invalid value is simply not stored (no new
  parameter, no new version). The emulator checks at once, answers moto's 200 answer
  (same Version and Tier) but rolls the change back, counts it in
  `GET /_emulator/counters` under `async_failed` (`ssm:PutParameter`) and emits the
  documented `Parameter Store Change` event with `exception: Unable to Describe
  Resource` (ssm_events.py).
* A parameter can't change to or from `aws:ec2:image` ("Parameter data types": "You
  can't change a parameter to or from either of these data types") → `ValidationException`.
  An update without `DataType` means `text` (the API's default), so updating an
  `aws:ec2:image` parameter without `DataType=aws:ec2:image` is refused too.
* LabelParameterVersion: labels that start with a number, "aws" or "ssm" (not case
  sensitive) or hold characters other than letters, digits, `.`, `-`, `_` are not
  attached and come back in `InvalidLabels` (moto only refused lower-case aws/ssm).
  Moving a label, the 10-labels-per-version limit, GetParameterHistory paging (≤ 50) and
  the 100-version limit (`ParameterMaxVersionLimitExceeded` when the oldest version has
  a label) are moto's own (pinned by tests/test_ssm_parameters.py).
* Every stored change emits `Parameter Store Change` (`Create`, `Update`, `Delete`,
  `LabelParameterVersion`) on the default bus of the account+region.
"""
from __future__ import annotations

import re
from typing import Any

from moto.core.responses import ActionResult
from moto.ssm.exceptions import ParameterNotFound, ValidationException
from moto.ssm.responses import SimpleSystemManagerResponse

from . import faults, ssm_events, state, visibility

IMAGE_DATA_TYPE = "aws:ec2:image"
# EC2 image ids: "ami-" + 8 hex digits (older ids) or 17 (current ids).
AMI_ID_RE = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# LabelParameterVersion: letters, digits, ".", "-", "_"; not starting with a digit.
LABEL_RE = re.compile(r"[A-Za-z_.\-][A-Za-z0-9_.\-]*")


def _versions(backend: Any, name: str) -> list:
    """The stored versions of `name` without creating an entry (moto's dict is a
    defaultdict: a plain lookup would leave an empty parameter behind)."""
    params = backend._parameters
    return list(dict.get(params, params.normalize_name(name), None) or [])


def image_problem(account: str, region: str, value: str) -> str | None:
    """Why `value` can't be an aws:ec2:image value here, or None when it can."""
    if not AMI_ID_RE.fullmatch(value or ""):
        return f"{value!r} is not an AMI id (ami- followed by 8 or 17 hex digits)"
    ami = visibility.find_image(account, region, value)
    if ami is None:
        return f"image {value} does not exist in {region} or is not available to account {account}"
    if ami.state != "available":
        return f"image {value} is {ami.state}, not available"
    return None


def _rollback(backend: Any, name: str, before: list, tags_before: dict | None) -> None:
    params = backend._parameters
    key = params.normalize_name(name)
    if before:
        dict.__setitem__(params, key, before)
    else:
        dict.pop(params, key, None)
    ptags = backend._resource_tags.get("Parameter", {})
    if tags_before is None:
        ptags.pop(key, None)
    else:
        ptags[key] = tags_before


def put_parameter(self):
    name = self._get_param("Name")
    value = self._get_param("Value")
    type_ = self._get_param("Type")
    data_type = self._get_param("DataType") or "text"
    overwrite = bool(self._get_param("Overwrite", False))
    account, region = self.current_account, self.region
    with state.LOCK:
        backend = self.ssm_backend
        before = _versions(backend, name)
        previous = before[-1] if before else None
        if previous is not None and overwrite and previous.data_type != data_type \
                and IMAGE_DATA_TYPE in (previous.data_type, data_type):
            raise ValidationException(
                f"Parameter {name} has data type {previous.data_type}; the request asks for "
                f"{data_type}. You can't change a parameter to or from the {IMAGE_DATA_TYPE} "
                f"data type: pass DataType={previous.data_type}, or delete the parameter and "
                "create it again.")
        if data_type == IMAGE_DATA_TYPE:
            effective_type = type_ or (previous.parameter_type if previous is not None else None)
            if effective_type and effective_type != "String":
                raise ValidationException(
                    f"Parameter {name}: data type {IMAGE_DATA_TYPE} is supported only for "
                    f"parameters of Type String, not {effective_type}.")
        key = backend._parameters.normalize_name(name)
        tags = backend._resource_tags.get("Parameter", {}).get(key)
        tags_before = dict(tags) if tags is not None and before else None
        # moto's own checks (name, type, overwrite, version limit) answer first, as AWS
        # answers them synchronously; only the image check is asynchronous on AWS.
        try:
            result = original["put_parameter"](self)
        except Exception:
            if not before:
                _rollback(backend, name, before, None)  # no empty entry left behind
            raise
        stored = _versions(backend, name)[-1]
        operation = "Update" if before else "Create"
        if data_type == IMAGE_DATA_TYPE:
            problem = image_problem(account, region, value)
            if problem is not None:
                _rollback(backend, name, before, tags_before)
                faults.count("async_failed", region, "ssm:PutParameter")
                ssm_events.image_validation_failed(account, region, stored.name, operation)
                return result  # 200 with the version AWS would have made; nothing stored
        ssm_events.parameter_change(account, region, stored.name, operation,
                                    stored.parameter_type, stored.description)
        return result


def label_parameter_version(self):
    name = self._get_param("Name")
    version = self._get_param("ParameterVersion")
    labels = self._get_param("Labels") or []
    account, region = self.current_account, self.region
    with state.LOCK:
        backend = self.ssm_backend
        versions = _versions(backend, name)
        if not versions:
            raise ParameterNotFound(f"Parameter {name} not found.")
        bad = [lb for lb in labels if not LABEL_RE.fullmatch(lb)
               or lb[:3].lower() in ("aws", "ssm")]
        good = [lb for lb in labels if lb not in bad]
        moto_invalid, number = backend.label_parameter_version(name, version, good)
        invalid = [lb for lb in labels if lb in bad or lb in moto_invalid]
        if len(invalid) < len(labels):
            latest = versions[-1]
            ssm_events.parameter_change(account, region, latest.name, "LabelParameterVersion",
                                        latest.parameter_type, latest.description)
        return ActionResult({"InvalidLabels": invalid, "ParameterVersion": number})


def unlabel_parameter_version(self):
    name = self._get_param("Name")
    with state.LOCK:
        if not _versions(self.ssm_backend, name):
            raise ParameterNotFound(f"Parameter {name} not found.")
        return original["unlabel_parameter_version"](self)


def delete_parameter(self):
    name = self._get_param("Name")
    with state.LOCK:
        versions = _versions(self.ssm_backend, name)
        result = original["delete_parameter"](self)
        if versions:
            last = versions[-1]
            ssm_events.parameter_change(self.current_account, self.region, last.name, "Delete",
                                        last.parameter_type, last.description)
        return result


def delete_parameters(self):
    names = self._get_param("Names") or []
    with state.LOCK:
        before = {n: _versions(self.ssm_backend, n) for n in names}
        result = original["delete_parameters"](self)
        for n in names:
            if before[n] and not _versions(self.ssm_backend, n):
                last = before[n][-1]
                ssm_events.parameter_change(self.current_account, self.region, last.name,
                                            "Delete", last.parameter_type, last.description)
        return result


original: dict[str, Any] = {}


def install() -> None:
    for fn in (put_parameter, label_parameter_version, unlabel_parameter_version,
               delete_parameter, delete_parameters):
        original[fn.__name__] = getattr(SimpleSystemManagerResponse, fn.__name__)
        setattr(SimpleSystemManagerResponse, fn.__name__, fn)
