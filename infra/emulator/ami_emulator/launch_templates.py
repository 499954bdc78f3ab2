"""Launch template versions as EC2 makes them (moto ignores SourceVersion and ClientToken).

* CreateLaunchTemplateVersion `SourceVersion` (a number, `$Latest` or `$Default`): the new
  version starts as a copy of that version's data and the request's `LaunchTemplateData`
  overwrites the corresponding (top-level) parameters (API reference: "the new version
  inherits the launch parameters from the source version. If you specify additional
  launch parameters for the new version, they overwrite any corresponding launch
  parameters inherited"). As documented, snapshots in the inherited block device
  mapping are dropped ("Snapshots applied to the block device mapping are ignored when
  creating a new version unless they are explicitly included"). An unknown source →
  `InvalidLaunchTemplateId.VersionNotFound` (moto's).
* `ClientToken` (≤ 128 ASCII characters): the same token with the same request answers
  the version it made, and makes none; the same token with another template, source,
  data or description → `IdempotentParameterMismatch`. Tokens are per account+region,
  cleared by reset.
* Neither `LaunchTemplateName` nor `LaunchTemplateId` → `MissingParameter` (moto: 500).
* CreateLaunchTemplate: moto copied the template's own tags (`TagSpecifications` of type
  `launch-template`) into version 1's `LaunchTemplateData.TagSpecifications`, where EC2
  keeps only instance/volume/... tags; they are left out here, so a copy of version 1
  does not carry them.
* DescribeLaunchTemplates `Tags`: the template's tags now (moto answered the tags it had at
  creation, so a tag added or removed later with CreateTags/DeleteTags never showed,
  although tag filters saw it).
`VersionDescription` ≤ 255 characters is the model check (validation.py);
ModifyLaunchTemplate `SetDefaultVersion` and DescribeLaunchTemplates tag filters are
moto's own (pinned by tests/test_launch_templates.py).
"""
from __future__ import annotations

import copy
import json
import threading
from typing import Any

from moto.core.responses import ActionResult

from . import state
from .errors import Ec2Error
from .patching import handler, original

MAX_TOKEN = 128

_lock = threading.Lock()
# (account, region, client token) -> (request fingerprint, template id, version number)
_tokens: dict[tuple[str, str, str], tuple[str, str, int]] = {}


def reset() -> None:
    with _lock:
        _tokens.clear()


def _template(self) -> Any:
    name = self._get_param("LaunchTemplateName")
    template_id = self._get_param("LaunchTemplateId")
    if template_id:
        return self.ec2_backend.get_launch_template(template_id)
    if name:
        return self.ec2_backend.get_launch_template_by_name(name)
    raise Ec2Error("MissingParameter",
                   "The request must contain the parameter LaunchTemplateName or LaunchTemplateId")


def inherited(source: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The source version's data overwritten by the given top-level parameters; inherited
    block device mappings lose their snapshots."""
    data = copy.deepcopy(source)
    if "BlockDeviceMappings" not in given:
        for bdm in data.get("BlockDeviceMappings") or []:
            (bdm.get("Ebs") or {}).pop("SnapshotId", None)
    data.update(copy.deepcopy(given))
    return data


def _answer(self, template: Any, version: Any) -> ActionResult:
    return ActionResult({
        "LaunchTemplateVersion": {
            "CreateTime": version.create_time,
            "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
            "DefaultVersion": template.is_default(version),
            "LaunchTemplateData": version.data,
            "LaunchTemplateId": template.id,
            "LaunchTemplateName": template.name,
            "VersionDescription": version.description,
            "VersionNumber": version.number,
        },
    })


def create_launch_template_version(self):
    token = self._get_param("ClientToken")
    source = self._get_param("SourceVersion")
    given = self._get_param("LaunchTemplateData", {}) or {}
    description = self._get_param("VersionDescription")
    if token is not None and len(token) > MAX_TOKEN:
        raise Ec2Error("InvalidParameterValue",
                       f"Value ({token}) for parameter ClientToken is invalid: it has "
                       f"{len(token)} characters; the maximum is {MAX_TOKEN}.")
    with state.LOCK:
        template = _template(self)
        self.error_on_dryrun()
        key = (self.current_account, self.region, token) if token else None
        fingerprint = json.dumps([template.id, source, given, description], sort_keys=True,
                                 default=str)
        if key is not None:
            with _lock:
                seen = _tokens.get(key)
            if seen is not None:
                if seen[0] != fingerprint:
                    raise Ec2Error(
                        "IdempotentParameterMismatch",
                        f"Client token {token} was already used for a CreateLaunchTemplateVersion "
                        f"request with other parameters (launch template {seen[1]}, version "
                        f"{seen[2]}). Use a new client token for a different request.")
                return _answer(self, template, template.get_version(seen[2]))
        data = inherited(template.get_version(source).data, given) if source else given
        version = template.create_version(data, description)
        if key is not None:
            with _lock:
                _tokens[key] = (fingerprint, template.id, version.number)
        return _answer(self, template, version)


def create_launch_template(self):
    result = original("create_launch_template")(self)
    template = self.ec2_backend.get_launch_template(result.result["LaunchTemplate"]["LaunchTemplateId"])
    data = template.versions[0].data
    specs = [s for s in data.get("TagSpecifications") or []
             if s.get("ResourceType") != "launch-template"]
    if specs:
        data["TagSpecifications"] = specs
    else:
        data.pop("TagSpecifications", None)
    return result


def _current_tags(self) -> list[dict[str, str]]:
    return self.get_tags()


def install() -> None:
    from moto.ec2.models.launch_templates import LaunchTemplate

    # moto's __init__ assigns `self.tags` once: the setter ignores it, the getter reads
    # the tag store CreateTags/DeleteTags change.
    LaunchTemplate.tags = property(_current_tags, lambda self, value: None)
    handler("create_launch_template_version")(create_launch_template_version)
    handler("create_launch_template")(create_launch_template)
    from moto.moto_api._internal.models import MotoAPIBackend

    previous = MotoAPIBackend.reset

    def reset_with_tokens(self) -> None:
        previous(self)
        reset()

    MotoAPIBackend.reset = reset_with_tokens
