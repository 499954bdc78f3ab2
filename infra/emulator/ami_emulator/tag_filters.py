"""`tag:KEY` filters read the resource's own tag entry instead of building its tag list.

moto's `TaggedEC2Resource.get_filter_value("tag:KEY")` builds the resource's whole tag
list (`get_tags`: one dict per tag plus a regex for the resource type) and scans it for
KEY, for every resource of every DescribeImages / DescribeSnapshots page (each page
filters the whole inventory: 5,000 images, 10,000 snapshots in the cleanup bench). With
bulk.py's `get_tags` (the backend's `tags[resource_id]` dict, in order), the first tag
named KEY is that dict's entry for KEY, so the value is read from it directly. Any
other filter name, or a class with another `get_tags`, takes moto's path unchanged.
"""
from __future__ import annotations

from typing import Any

original: Any = None  # moto's TaggedEC2Resource.get_filter_value, kept for tests


def get_filter_value(self, filter_name: str, method_name: str | None = None) -> Any:
    from . import bulk
    if filter_name.startswith("tag:") and type(self).get_tags is bulk._get_tags:
        rid = getattr(self, "id", None)
        tags = self.ec2_backend.tags.get(rid) if rid else None
        return tags.get(filter_name[4:]) if tags else None
    return original(self, filter_name, method_name)


_installed = False


def install() -> None:
    global _installed, original
    if _installed:
        return
    _installed = True
    from moto.ec2.models.core import TaggedEC2Resource
    original = TaggedEC2Resource.get_filter_value
    TaggedEC2Resource.get_filter_value = get_filter_value
