"""DescribeImageReferences and Image.LastLaunchedTime (neither exists in moto).

* DescribeImageReferences lists resources that reference an image: EC2 instances in
  any non-terminated state (ec2:Instance) and launch templates any of whose versions
  (not only the default) use it (ec2:LaunchTemplate), as ImageReferences
  [{Arn, ImageId, ResourceType}]. SSM parameters and Image Builder recipes are not
  modelled (never returned).
* RunInstances from an image sets its LastLaunchedTime (AWS reports it with ~24 h
  delay; here at once). The control API can set it to any time.
"""
from __future__ import annotations

from moto.core.responses import ActionResult

from . import state, visibility
from .patching import handler, original

ALL_TYPES = ("ec2:Instance", "ec2:LaunchTemplate", "ssm:Parameter",
             "imagebuilder:ImageRecipe", "imagebuilder:ContainerRecipe")


def describe_image_references(self):
    image_ids = self._get_param("ImageIds", []) or []
    include_all = state.truthy(self._get_param("IncludeAllResourceTypes", False))
    rtypes = [r.get("ResourceType") for r in (self._get_param("ResourceTypes", []) or [])]
    wanted = set(ALL_TYPES if include_all or not rtypes else rtypes)
    account, region = self.current_account, self.region
    refs = []
    with state.LOCK:
        backend = self.ec2_backend
        ids = set(image_ids)
        if "ec2:Instance" in wanted:
            for instance in sorted(backend.all_instances(), key=lambda i: i.id):
                if instance.image_id in ids and instance._state.name != "terminated":
                    refs.append({"ImageId": instance.image_id, "ResourceType": "ec2:Instance",
                                 "Arn": f"arn:aws:ec2:{region}:{account}:instance/{instance.id}"})
        if "ec2:LaunchTemplate" in wanted:
            for lt in sorted(backend.launch_templates.values(), key=lambda t: t.id):
                used = {v.image_id for v in lt.versions} & ids
                for image_id in sorted(used):
                    refs.append({"ImageId": image_id, "ResourceType": "ec2:LaunchTemplate",
                                 "Arn": f"arn:aws:ec2:{region}:{account}:launch-template/{lt.id}"})
    return ActionResult({"ImageReferences": refs})


def set_last_launched(account: str, region: str, image_id: str, when: str) -> bool:
    with state.LOCK:
        ami = visibility.find_image(account, region, image_id)
        if ami is None:
            return False
        ami.last_launched_time = when
        return True


def run_instances(self):
    image_id = self._get_param("ImageId")
    result = original("run_instances")(self)
    if image_id:
        set_last_launched(self.current_account, self.region, image_id,
                          state.iso(state.now()).replace(".000Z", "Z"))
    return result


def install() -> None:
    handler("describe_image_references")(describe_image_references)
    handler("run_instances")(run_instances)
