"""Per-request work in moto's server that gives the same answer every time, done once.

Profiling the cleanup bench (one EC2 call per image, thousands a minute) showed moto
spending a tenth of each request on answers that never change while serving:
* `moto.backends.list_of_moto_modules()` lists moto's package directory (listdir plus
  one isdir per entry) for every request, to route it to a service;
* `moto.core.responses.method_names_from_class(EC2Response)` runs
  `inspect.getmembers` over the ~700 methods of the response class for every call,
  only to ask whether the action has a handler;
* the response serializer asks, for every member of every object it writes (35 per
  image: a DescribeImages page of 1,000 images is 35,000 questions), which attribute
  names may hold the member (`XFormedAttributePicker.get_possible_keys`: six alias
  providers built and asked, plus botocore's xform_name). The answer depends only on
  the object's class, the member's name, its shape and that shape's parent structure,
  never on the object's values, so it is cached under those (an object carrying its
  own `Meta`, which moto never does, is asked afresh).
* after picking each value it looks for a response transformer whose path ends the
  value's key path, trying every transformer of EC2Response (`AttributePicker.__call__`;
  15% of a DescribeImages page): which one applies depends only on that path and the
  response class's (static) transformer table, so the choice is cached per path.
All are replaced by cached versions. The method names are cached per class and
forgotten whenever patching.handler installs a handler (handlers are installed at
start-up, before the first request; clearing keeps a late one visible too).
"""
from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_modules: tuple[str, ...] | None = None
_method_names: dict[type, "MethodNames"] = {}
_possible_keys: dict[tuple, tuple[str, ...]] = {}
original_possible_keys: Any = None  # moto's own, kept for tests
# (id of a response class's transformer table, key path) -> the transform, or None.
# The tables are class attributes (never freed), pinned in _tables all the same.
_transforms: dict[tuple[int, str], Any] = {}
_tables: dict[int, Any] = {}


def transform_for(transformers: Any, key_path: str):
    """The first transformer whose path ends `key_path` (AttributePicker's rule), or None."""
    key = (id(transformers), key_path)
    try:
        return _transforms[key]
    except KeyError:
        pass
    found = None
    for transform_path, transform in transformers.items():
        if key_path.endswith(transform_path):
            found = transform
            break
    _tables[id(transformers)] = transformers
    _transforms[key] = found
    return found


class MethodNames(list):
    """The list moto builds, with a set behind `in` (moto only asks membership)."""

    def __init__(self, names):
        super().__init__(names)
        self._set = frozenset(self)

    def __contains__(self, name) -> bool:
        return name in self._set


def alias_cache_key(context: Any) -> tuple | None:
    """What `get_possible_keys` depends on (see the module doc); None: do not cache."""
    obj, shape = context.obj, context.shape
    cls = type(obj)
    meta = getattr(obj, "Meta", None)
    if meta is not None and meta is not getattr(cls, "Meta", None):
        return None
    shape_part = parent_part = None
    if shape is not None:
        shape_part = (shape.name, shape.type_name, shape.serialization.get("name"))
        parent = getattr(shape, "parent", None)
        if parent is not None:
            parent_part = (parent.name, parent.type_name)
    service = getattr(context.service_model, "service_name", None)
    return (service, cls, context.key, shape_part, parent_part)


def forget_method_names() -> None:
    with _lock:
        _method_names.clear()


_installed = False


def install() -> None:
    global _installed
    if _installed:  # wrapping our own wrappers would hide moto's originals
        return
    _installed = True
    import moto.backends
    import moto.core.responses
    import moto.core.utils

    original_modules = moto.backends.list_of_moto_modules
    original_names = moto.core.utils.method_names_from_class

    def list_of_moto_modules():
        global _modules
        if _modules is None:
            _modules = tuple(original_modules())
        return _modules

    def method_names_from_class(clazz: Any) -> MethodNames:
        names = _method_names.get(clazz)
        if names is None:
            names = MethodNames(original_names(clazz))
            with _lock:
                _method_names[clazz] = names
        return names

    from moto.core.serialize import XFormedAttributePicker

    global original_possible_keys
    original_keys = original_possible_keys = XFormedAttributePicker.get_possible_keys

    def get_possible_keys(self, context):
        key = alias_cache_key(context)
        if key is None:
            return tuple(original_keys(self, context))
        keys = _possible_keys.get(key)
        if keys is None:
            keys = _possible_keys[key] = tuple(original_keys(self, context))
        return keys

    XFormedAttributePicker.get_possible_keys = get_possible_keys

    from moto.core.serialize import AttributePicker
    from moto.core.utils import MISSING, get_value

    def pick(self, context):
        obj = context.obj
        for possible_key in self.get_possible_keys(context):
            value = get_value(obj, possible_key, MISSING)
            if value is not MISSING:
                break
        else:
            value = None
        if self.response_transformers:
            transform = transform_for(self.response_transformers,
                                      f"{context.key_path}.{context.key}")
            if transform is not None:
                value = transform(value)
        return value

    AttributePicker.__call__ = pick
    moto.backends.list_of_moto_modules = list_of_moto_modules
    # responses.py imported the function by name: replace it where it is called.
    moto.core.responses.method_names_from_class = method_names_from_class
