"""`resolve:ssm:` image ids in launch templates and RunInstances (moto stores or runs the
alias string as if it were an image id).

EC2 accepts, wherever an `ImageId` goes, `resolve:ssm:NAME`, `resolve:ssm:NAME:VERSION`
or `resolve:ssm:NAME:LABEL` (EC2 User Guide, "Use a Systems Manager parameter instead of
an AMI ID"); the parameter is looked up in the caller's account and region:

* CreateLaunchTemplate / CreateLaunchTemplateVersion: the alias is stored as given, after
  checking that the parameter (and version or label) exists and has data type
  `aws:ec2:image`; otherwise `SsmInvalidParameter` ("The following aliases are invalid:
  ..." / "Unsupported data type. The following parameter data types are supported:
  aws:ec2:image", the messages EC2 answers);
* DescribeLaunchTemplateVersions (and CreateLaunchTemplateVersion's answer): the alias as
  stored; with `ResolveAlias=true` the AMI id the parameter holds now (a version whose
  parameter is gone keeps its alias);
* RunInstances, `ImageId` given as an alias, or left out with a launch template whose
  `ImageId` is one: the instance launches from the image the parameter holds now (the
  instance's ImageId is that AMI id). A missing parameter, version or label →
  `SsmInvalidParameter`; a value that is not an image the account can launch there →
  `InvalidAMIID.NotFound`. RunInstances also takes `text` parameters (AWS's public
  `/aws/service/...` AMI parameters are `text`); launch templates only `aws:ec2:image`.

Installed after disabled_images.py and instances.py: the alias is resolved before they
read `ImageId`.
"""
from __future__ import annotations

import copy
from typing import Any

from moto.ec2.responses import EC2Response

from . import state, visibility
from .errors import Ec2Error, image_not_found

PREFIX = "resolve:ssm:"
IMAGE_DATA_TYPE = "aws:ec2:image"


def is_alias(image_id: Any) -> bool:
    return isinstance(image_id, str) and image_id.startswith(PREFIX)


def _invalid(alias: str, why: str) -> Ec2Error:
    return Ec2Error("SsmInvalidParameter", f"The following aliases are invalid: {alias} ({why})")


def find_parameter(account: str, region: str, alias: str) -> Any:
    """The parameter version `alias` names; SsmInvalidParameter when there is none."""
    from moto.ssm.models import ssm_backends

    rest = alias[len(PREFIX):]
    name, _, selector = rest.partition(":")
    if not name:
        raise _invalid(alias, "no parameter name after resolve:ssm:")
    params = ssm_backends[account][region]._parameters
    versions = list(dict.get(params, params.normalize_name(name), None) or [])
    if not versions:
        raise _invalid(alias, f"no SSM parameter {name} in account {account}, region {region}; "
                              "create it (PutParameter, DataType aws:ec2:image) first")
    if not selector:
        return versions[-1]
    if selector.isdigit():
        found = [v for v in versions if v.version == int(selector)]
        what = f"version {selector}"
    else:
        found = [v for v in versions if selector in v.labels]
        what = f"label {selector}"
    if not found:
        raise _invalid(alias, f"parameter {name} has no {what}")
    return found[-1]


def check_for_template(account: str, region: str, alias: str) -> None:
    param = find_parameter(account, region, alias)
    if param.data_type != IMAGE_DATA_TYPE:
        raise Ec2Error("SsmInvalidParameter",
                       "Unsupported data type. The following parameter data types are supported: "
                       f"{IMAGE_DATA_TYPE} (parameter {param.name} has data type {param.data_type}; "
                       "a launch template can only use aws:ec2:image parameters)")


def resolve_image(account: str, region: str, alias: str) -> str:
    """The AMI id the parameter holds now, for a launch: it must be an image the
    account can launch in the region."""
    value = find_parameter(account, region, alias).value
    with state.LOCK:
        ami = visibility.find_image(account, region, value)
    if ami is None:
        raise image_not_found(value)
    return value


def _template_image_alias(self) -> str | None:
    data = self._get_param("LaunchTemplateData", {}) or {}
    image_id = data.get("ImageId")
    return image_id if is_alias(image_id) else None


def _wrap_create(previous):
    def create(self):
        alias = _template_image_alias(self)
        if alias:
            check_for_template(self.current_account, self.region, alias)
        result = previous(self)
        # CreateLaunchTemplateVersion `ResolveAlias=true`: the answer shows the AMI id.
        version = result.result.get("LaunchTemplateVersion")
        if version and state.truthy(self._get_param("ResolveAlias", False)):
            resolve_aliases(self.current_account, self.region, [version])
        return result
    create.__name__ = previous.__name__
    return create


def _wrap_describe_versions(previous):
    def describe_launch_template_versions(self):
        result = previous(self)
        if state.truthy(self._get_param("ResolveAlias", False)):
            resolve_aliases(self.current_account, self.region,
                            result.result["LaunchTemplateVersions"])
        return result
    return describe_launch_template_versions


def resolve_aliases(account: str, region: str, versions: list[dict[str, Any]]) -> None:
    for v in versions:
        data = v.get("LaunchTemplateData") or {}
        if not is_alias(data.get("ImageId")):
            continue
        try:
            value = find_parameter(account, region, data["ImageId"]).value
        except Ec2Error:
            continue  # parameter gone: the alias stays as stored
        # moto answers the stored dict itself: change a copy, never the template
        v["LaunchTemplateData"] = {**copy.deepcopy(data), "ImageId": value}


def _wrap_run_instances(previous):
    def run_instances(self):
        image_id = self._get_param("ImageId")
        alias = image_id if is_alias(image_id) else None
        lt = self._get_param("LaunchTemplate") or {}
        if not image_id and lt:
            version = self.ec2_backend._get_template_from_args(lt)
            if is_alias(version.image_id):
                alias = version.image_id
        if alias:
            # The instance is launched from the image the parameter holds now.
            self.params["ImageId"] = resolve_image(self.current_account, self.region, alias)
        return previous(self)
    return run_instances


def install() -> None:
    """Wraps whatever handlers are installed before (moto's or launch_templates.py's)."""
    for name in ("create_launch_template", "create_launch_template_version"):
        setattr(EC2Response, name, _wrap_create(getattr(EC2Response, name)))
    EC2Response.describe_launch_template_versions = _wrap_describe_versions(
        EC2Response.describe_launch_template_versions)
    EC2Response.run_instances = _wrap_run_instances(EC2Response.run_instances)
