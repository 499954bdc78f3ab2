"""`Tag Change on Resource` events for images on CreateTags/DeleteTags.

moto emits no aws.tag events. EC2 (via Tag Policies/Resource Groups Tagging) emits
one per changed resource: `changed-tag-keys` (added, changed and deleted keys),
`tags` = the full set AFTER the change, `service: ec2`, `resource-type: image`, and
an integer `version` incremented per change of that resource.
"""
from __future__ import annotations

from . import events, state
from .patching import handler, original


def _tags(backend, resource_id: str) -> dict[str, str]:
    return dict(backend.tags.get(resource_id, {}))


def _wrap(action: str):
    def fn(self):
        resource_ids = [r for r in (self._get_param("Resources", []) or []) if r.startswith("ami-")]
        given = self._get_param("Tags", []) or []
        with state.LOCK:
            backend = self.ec2_backend
            before = {r: _tags(backend, r) for r in resource_ids}
            result = original(action)(self)
            for r in resource_ids:
                after = _tags(backend, r)
                if action == "create_tags":
                    changed = [t["Key"] for t in given]
                else:
                    changed = [k for k in before[r] if k not in after]
                if not changed:
                    continue
                account, region = self.current_account, self.region
                key = (account, region, r)
                state.TAG_VERSIONS[key] = state.TAG_VERSIONS.get(key, 0) + 1
                events.tag_change(account, region, r, changed, after, state.TAG_VERSIONS[key])
        return result

    fn.__name__ = action
    return fn


def install() -> None:
    handler("create_tags")(_wrap("create_tags"))
    handler("delete_tags")(_wrap("delete_tags"))
