"""DescribeImageReferences and Image.LastLaunchedTime (neither exists in moto).

DescribeImageReferences as the EC2 API reference describes it, in the caller's
account+region only:
* `ImageId.N`: 1 to 10 ids (more -> InvalidParameterValue; the generic model check in
  validation.py answers first when strict, this stays for strict=false);
* `ResourceTypes` with `ResourceTypeOptions`: `ec2:Instance` + `state-name`
  (pending|running|shutting-down|terminated|stopping|stopped; default all states),
  `ec2:LaunchTemplate` + `version-depth` (1-10000; default 10: only the N newest
  versions of each template are checked), `ssm:Parameter` (a parameter of moto's SSM
  whose current value is the image id, any data type incl. `aws:ec2:image`);
  `IncludeAllResourceTypes=true` adds every type with its defaults; neither given ->
  MissingParameter;
* Image Builder recipes: moto has no Image Builder -> never returned (not emulated);
* `MaxResults` (>= 5) + `NextToken`, stable order.
RunInstances from an image sets its LastLaunchedTime via set_last_launched
(instances.py; AWS reports it with ~24 h delay; here at once). The control API can
set it to any time.
"""
from __future__ import annotations

import base64
from typing import Any

from moto.core.responses import ActionResult

from . import state, visibility
from .errors import Ec2Error
from .patching import handler

ALL_TYPES = ("ec2:Instance", "ec2:LaunchTemplate", "ssm:Parameter",
             "imagebuilder:ImageRecipe", "imagebuilder:ContainerRecipe")
INSTANCE_STATES = ("pending", "running", "shutting-down", "terminated", "stopping", "stopped")
DEFAULT_VERSION_DEPTH = 10
MAX_VERSION_DEPTH = 10000
MAX_IMAGE_IDS = 10
OPTION_FOR = {"ec2:Instance": "state-name", "ec2:LaunchTemplate": "version-depth"}


def _bad(message: str) -> Ec2Error:
    return Ec2Error("InvalidParameterValue", message)


def parse_scope(include_all: bool, resource_types: list[dict[str, Any]]) -> dict[str, Any]:
    """-> {resource type: option value}: states (set) for instances, depth (int) for
    launch templates, None for the others. Raises InvalidParameterValue."""
    scope: dict[str, Any] = {}
    for rt in resource_types:
        rtype = rt.get("ResourceType")
        if rtype not in ALL_TYPES:
            raise _bad(f"Value ({rtype}) for parameter ResourceType is invalid. "
                       f"Valid values: {', '.join(ALL_TYPES)}.")
        value: Any = None
        if rtype == "ec2:Instance":
            value = set(INSTANCE_STATES)
        elif rtype == "ec2:LaunchTemplate":
            value = DEFAULT_VERSION_DEPTH
        for opt in rt.get("ResourceTypeOptions") or []:
            name, values = opt.get("OptionName"), opt.get("OptionValues") or []
            if OPTION_FOR.get(rtype) != name:
                raise _bad(f"Option ({name}) is not valid for resource type {rtype}. "
                           f"Valid option: {OPTION_FOR.get(rtype, 'none')}.")
            if name == "state-name":
                bad = [v for v in values if v not in INSTANCE_STATES]
                if bad or not values:
                    raise _bad(f"Value ({', '.join(bad)}) for option state-name is invalid. "
                               f"Valid values: {' | '.join(INSTANCE_STATES)}.")
                value = set(values)
            else:
                if len(values) != 1 or not str(values[0]).isdigit() \
                        or not 1 <= int(values[0]) <= MAX_VERSION_DEPTH:
                    raise _bad(f"Value ({', '.join(map(str, values))}) for option version-depth "
                               f"is invalid. Expecting one integer between 1 and "
                               f"{MAX_VERSION_DEPTH}.")
                value = int(values[0])
        scope[rtype] = value
    if include_all:
        for rtype in ALL_TYPES:
            if rtype not in scope:
                scope[rtype] = {"ec2:Instance": set(INSTANCE_STATES),
                                "ec2:LaunchTemplate": DEFAULT_VERSION_DEPTH}.get(rtype)
    return scope


def find_references(account: str, region: str, ids: set[str],
                    scope: dict[str, Any]) -> list[dict[str, str]]:
    backend = state.ec2_backend(account, region)
    refs = []
    if "ec2:Instance" in scope:
        states = scope["ec2:Instance"]
        for instance in backend.all_instances():
            if instance.image_id in ids and instance._state.name in states:
                refs.append({"ImageId": instance.image_id, "ResourceType": "ec2:Instance",
                             "Arn": f"arn:aws:ec2:{region}:{account}:instance/{instance.id}"})
    if "ec2:LaunchTemplate" in scope:
        depth = scope["ec2:LaunchTemplate"]
        for lt in backend.launch_templates.values():
            newest = sorted(lt.versions, key=lambda v: int(v.number), reverse=True)[:depth]
            for image_id in sorted({v.image_id for v in newest} & ids):
                refs.append({"ImageId": image_id, "ResourceType": "ec2:LaunchTemplate",
                             "Arn": f"arn:aws:ec2:{region}:{account}:launch-template/{lt.id}"})
    if "ssm:Parameter" in scope:
        refs.extend(ssm_references(account, region, ids))
    return sorted(refs, key=lambda r: (r["ImageId"], r["ResourceType"], r["Arn"]))


def ssm_references(account: str, region: str, ids: set[str]) -> list[dict[str, str]]:
    from moto.ssm.models import ssm_backends
    from moto.ssm.utils import parameter_arn

    out = []
    if account not in ssm_backends or region not in ssm_backends[account]:
        return out  # SSM never used in this account+region: nothing to reference
    params = ssm_backends[account][region]._parameters
    for name, versions in list(params.items()):
        if versions and versions[-1].parameter_type != "SecureString" \
                and versions[-1].value in ids:
            out.append({"ImageId": versions[-1].value, "ResourceType": "ssm:Parameter",
                        "Arn": parameter_arn(account, region, name)})
    return out


def describe_image_references(self):
    image_ids = self._get_param("ImageIds", []) or []
    include_all = state.truthy(self._get_param("IncludeAllResourceTypes", False))
    rtypes = self._get_param("ResourceTypes", []) or []
    max_results = self._get_param("MaxResults")
    next_token = self._get_param("NextToken")
    self.error_on_dryrun()
    if not 1 <= len(image_ids) <= MAX_IMAGE_IDS:
        raise _bad(f"The parameter ImageIds has {len(image_ids)} values; it takes 1 to "
                   f"{MAX_IMAGE_IDS} image ids per request.")
    if not include_all and not rtypes:
        # API reference: "Either IncludeAllResourceTypes or ResourceTypes must be specified."
        raise Ec2Error("MissingParameter", "Either IncludeAllResourceTypes or ResourceTypes "
                       "must be specified.")
    scope = parse_scope(include_all, rtypes)
    with state.LOCK:
        refs = find_references(self.current_account, self.region, set(image_ids), scope)
    start = 0
    if next_token:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode().split(":", 1)[1])
        except Exception:
            raise Ec2Error("InvalidPaginationToken", f"The token '{next_token}' is invalid.")
    result: dict[str, Any] = {}
    if max_results not in (None, ""):
        n = int(max_results)
        if n < 5:
            raise _bad(f"Value ( {n} ) for parameter MaxResults is invalid. "
                       "Expecting a value greater than or equal to 5.")
        page = refs[start:start + n]
        if start + n < len(refs):
            result["NextToken"] = base64.urlsafe_b64encode(f"refs:{start + n}".encode()).decode()
    else:
        page = refs[start:]
    result["ImageReferences"] = page
    return ActionResult(result)


def set_last_launched(account: str, region: str, image_id: str, when: str) -> bool:
    with state.LOCK:
        ami = visibility.find_image(account, region, image_id)
        if ami is None:
            return False
        ami.last_launched_time = when
        return True


def install() -> None:
    handler("describe_image_references")(describe_image_references)
