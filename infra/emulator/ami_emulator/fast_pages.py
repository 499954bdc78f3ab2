"""DescribeImages / DescribeSnapshots pages written from a per-item cache of their XML.

Profiling the cleanup bench (3 regions x 5,000 images listed through one emulator
process) showed ~80% of each DescribeImages / DescribeSnapshots page spent in moto's
generic response serializer: for every image, ~40 members each looked up through the
attribute picker, then the whole page rendered by xmltodict. An image's `<item>`
depends only on the image (its attributes, the properties moto reads, its tags), so:

* `ItemCache` keeps, per (serializer class, operation, key path, object), the dict
  moto's serializer made for the item, the XML moto would write for it (`<item>...
  </item>`, rendered by xmltodict's own `_emit` exactly as inside the page), and the
  item's `fingerprint`;
* `fingerprint` is everything the serializer can read off the object: its `__dict__`
  (nested lists/dicts/sets by value, nested model objects and backends by identity:
  the serializer reads nothing off them but through a property of the item), the
  value of every property of its class (block device mappings with their snapshot
  ids, volume id/size, product codes...) and its tags (the backend's entry for its id).
  Any mutation (tags, state, deprecation, launch permissions, deregistration...)
  changes it, and a changed fingerprint re-serializes the item through moto;
* the page's list is a `PrerenderedList` (a list of the same dicts, so anything reading
  the serialized result sees what moto made); the body of such a response is written by
  a copy of xmltodict's `unparse` whose `_emit` writes the cached fragments for it
  instead of walking the dicts (xmltodict itself is left alone). Output is byte for
  byte moto's.

Only the serializer's list step is replaced: the handlers (paging, filters,
visibility), the middleware (validation, faults, throttling, counters) and the
envelope (requestId, namespace, errors) stay moto's and the emulator's. Pretty-printed
output (never used by the server) bypasses the cache.
"""
from __future__ import annotations

import datetime
import threading
import types
import weakref
from typing import Any

# operation name -> list member shape names whose items are cached
CACHED = {"DescribeImages": "Image", "DescribeSnapshots": "Snapshot"}
MAX_ENTRIES = 400_000  # cleared wholesale beyond this (entries also die with their object)
_PRIMITIVE = (str, int, float, bool, bytes, type(None), datetime.datetime, datetime.date)
_EXACT_PRIMITIVE = frozenset(_PRIMITIVE)

_lock = threading.Lock()
_props: dict[type, tuple[str, ...]] = {}
stats = {"hits": 0, "misses": 0}  # read by tests


def _freeze(value: Any, depth: int) -> Any:
    """A comparable snapshot of `value` (see the module doc for the depth rule)."""
    t = type(value)
    if t in _EXACT_PRIMITIVE:
        return value
    if t is list or t is tuple:
        return (t, tuple([_freeze(v, depth) for v in value]))
    if t is dict:
        return (t, tuple([(k, _freeze(v, depth)) for k, v in value.items()]))
    if isinstance(value, _PRIMITIVE):
        return (t, value)
    if isinstance(value, (list, tuple)):
        return (t, tuple([_freeze(v, depth) for v in value]))
    if isinstance(value, dict):
        return (t, tuple([(k, _freeze(v, depth)) for k, v in value.items()]))
    if isinstance(value, (set, frozenset)):
        return (t, tuple(sorted((_freeze(v, depth) for v in value), key=repr)))
    if depth <= 0 or isinstance(value, _backend_type()) or not hasattr(value, "__dict__"):
        return ("O", id(value))
    return ("O", id(value), t, _freeze(vars(value), depth - 1))


_backend: Any = None


def _backend_type() -> type:
    global _backend
    if _backend is None:
        from moto.core.base_backend import BaseBackend
        _backend = BaseBackend
    return _backend


TAG_PROPERTIES = ("tag_list", "tag_set")  # both moto's get_tags(), see fingerprint


def properties_of(cls: type) -> tuple[str, ...]:
    names = _props.get(cls)
    if names is None:
        names = tuple(n for n in dir(cls) if isinstance(getattr(cls, n, None), property))
        _props[cls] = names
    return names


def _tags_from_backend(obj: Any) -> bool:
    """Whether obj's tags are exactly its entry of `ec2_backend.tags` (bulk.py's get_tags)."""
    from . import bulk
    return getattr(type(obj), "get_tags", None) is bulk._get_tags


def fingerprint(obj: Any) -> Any:
    """See the module doc. Tags: with bulk.py's get_tags (always, once installed), the
    backend's tag entry for the id is all tag_list/tag_set read, so it stands for both."""
    names = properties_of(type(obj))
    if _tags_from_backend(obj) and hasattr(obj, "ec2_backend"):
        tags = obj.ec2_backend.tags.get(getattr(obj, "id", None))
        tags = tuple(tags.items()) if tags else ()
        props = tuple([_freeze(getattr(obj, n), 0) for n in names if n not in TAG_PROPERTIES])
        return (_freeze(vars(obj), 0), props, tags)
    return (_freeze(vars(obj), 0), tuple([_freeze(getattr(obj, n), 0) for n in names]))


class PrerenderedList(list):
    """The serialized items of a page, with their XML fragments alongside."""

    def __init__(self, items: list, fragments: list[str]):
        super().__init__(items)
        self.fragments = fragments


class ItemCache:
    """(context, object id) -> (weakref to object, fingerprint, dict, XML fragment)."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple] = {}

    def get(self, key: tuple, obj: Any, fp: Any):
        entry = self._entries.get(key)
        if entry is None or entry[0]() is not obj or entry[1] != fp:
            return None
        return entry[2], entry[3]

    def put(self, key: tuple, obj: Any, fp: Any, item: Any, fragment: str) -> None:
        entries = self._entries

        def forget(_ref, key=key):
            entries.pop(key, None)

        try:
            ref = weakref.ref(obj, forget)
        except TypeError:
            return
        with _lock:
            if len(entries) >= MAX_ENTRIES:
                entries.clear()
            entries[key] = (ref, fp, item, fragment)

    def clear(self) -> None:
        with _lock:
            self._entries.clear()


CACHE = ItemCache()


def render_item(name: str, item: Any) -> str:
    """The XML xmltodict writes for one list element `name` (pretty=False)."""
    from io import StringIO

    import xmltodict
    out = StringIO()
    handler = xmltodict._XMLGenerator(out, "utf-8", True)
    _plain_emit(name, [item], handler, full_document=False, depth=3)
    return out.getvalue()


# Copies of xmltodict's functions over copies of its globals (see install()): `_plain_emit`
# is xmltodict's `_emit` as is (per-item rendering); `_page_unparse` is its `unparse`
# whose `_emit` writes a PrerenderedList's fragments. xmltodict itself is not patched:
# every other response is written by the unchanged module.
_plain_emit: Any = None
_page_emit_inner: Any = None
_page_unparse: Any = None
original_list: Any = None  # moto's BaseXMLSerializer._serialize_type_list, kept for tests
original_body: Any = None  # moto's EC2Serializer._serialize_body


def _page_emit(key, value, content_handler, *args, **kwargs):
    if type(value) is PrerenderedList:
        # The parent's start tag may still be open (short empty elements): close it
        # as the first child's startElement would, then write the items as they were.
        content_handler._finish_pending_start_element()
        content_handler._write("".join(value.fragments))
        return
    return _page_emit_inner(key, value, content_handler, *args, **kwargs)


def serialize_body(self, body):
    if not getattr(self, "_fast_pages", False):
        return original_body(self, body)
    # moto's EC2Serializer._serialize_body, with the copy of unparse that knows the lists
    return _page_unparse(body, full_document=True, pretty=self.pretty_print,
                         short_empty_elements=True)


def serialize_list(self, serialized, value, shape, key):
    member = shape.member
    operation = self.operation_model.name
    if (self.pretty_print or shape.is_flattened or CACHED.get(operation) != member.name
            or not value):
        return original_list(self, serialized, value, shape, key)
    context = (type(self), operation, tuple(self.path), member.name)
    item_key = self.get_serialized_name(member, member.name)
    items, fragments = [], []
    try:
        fps = [fingerprint(obj) for obj in value]
    except Exception:  # a property moto itself would trip on: let moto report it
        return original_list(self, serialized, value, shape, key)
    for obj, fp in zip(value, fps):
        ck = context + (id(obj),)
        hit = CACHE.get(ck, obj, fp)
        if hit is None:
            stats["misses"] += 1
            wrapper: dict = {}
            self._serialize(wrapper, obj, member, member.name)
            item = wrapper.get(item_key, {}) if wrapper else {}
            fragment = render_item(self.get_serialized_name(member, "member"), item) \
                if item != {} else ""
            CACHE.put(ck, obj, fp, item, fragment)
        else:
            stats["hits"] += 1
            item, fragment = hit
        if item != {}:
            items.append(item)
            fragments.append(fragment)
    if not items:
        self._default_serialize(serialized, "", shape, key)
        return
    items_name = self.get_serialized_name(member, "member")
    self._fast_pages = True
    self._default_serialize(serialized, {items_name: PrerenderedList(items, fragments)},
                            shape, key)


_installed = False


def _clone(fn: Any, namespace: dict) -> Any:
    copy = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__,
                              fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


def install() -> None:
    global _installed, _plain_emit, _page_emit_inner, _page_unparse, original_list, original_body
    if _installed:
        return
    _installed = True
    import xmltodict
    from moto.core.serialize import BaseXMLSerializer, EC2Serializer

    plain = dict(vars(xmltodict))
    _plain_emit = plain["_emit"] = _clone(xmltodict._emit, plain)
    page = dict(vars(xmltodict))
    _page_emit_inner = _clone(xmltodict._emit, page)
    page["_emit"] = _page_emit
    _page_unparse = _clone(xmltodict.unparse, page)
    original_list = EC2Serializer._serialize_type_list
    assert original_list is BaseXMLSerializer._serialize_type_list
    original_body = EC2Serializer._serialize_body
    EC2Serializer._serialize_type_list = serialize_list
    EC2Serializer._serialize_body = serialize_body
