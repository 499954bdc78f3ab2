"""Per-request work in moto's server that gives the same answer every time, done once.

Profiling the cleanup bench (one EC2 call per image, thousands a minute) showed moto
spending a tenth of each request on answers that never change while serving:
* `moto.backends.list_of_moto_modules()` lists moto's package directory (listdir plus
  one isdir per entry) for every request, to route it to a service;
* `moto.core.responses.method_names_from_class(EC2Response)` runs
  `inspect.getmembers` over the ~700 methods of the response class for every call,
  only to ask whether the action has a handler.
Both are replaced by cached versions. The method names are cached per class and
forgotten whenever patching.handler installs a handler (handlers are installed at
start-up, before the first request; clearing keeps a late one visible too).
"""
from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_modules: tuple[str, ...] | None = None
_method_names: dict[type, "MethodNames"] = {}


class MethodNames(list):
    """The list moto builds, with a set behind `in` (moto only asks membership)."""

    def __init__(self, names):
        super().__init__(names)
        self._set = frozenset(self)

    def __contains__(self, name) -> bool:
        return name in self._set


def forget_method_names() -> None:
    with _lock:
        _method_names.clear()


def install() -> None:
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

    moto.backends.list_of_moto_modules = list_of_moto_modules
    # responses.py imported the function by name: replace it where it is called.
    moto.core.responses.method_names_from_class = method_names_from_class
