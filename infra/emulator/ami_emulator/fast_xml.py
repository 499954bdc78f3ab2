"""A compiled EC2 XML serializer for the answers that carry thousands of items.

moto serializes every answer with one generic, model-driven serializer: for each member
of each item it builds a picker context, walks the botocore shape, fills a nested dict,
then `xmltodict` writes the dict out. Profiled under the cleanup benchmark, a
DescribeImages page of 1,000 images cost ~0.45 s of the emulator's one core, 95% of it in
that machinery (the values themselves are cheap), so listing 3 x 5,000 images took ~7 s
of the emulator before the suite could plan anything.

[`compile_shape`] walks the output shape once per (operation, class of item) and keeps,
per member, the keys moto's picker tries, its response transformer, the XML name and the
writer of the member's type; [`FastResult`] writes the answer with it straight to text.
It follows moto's rules exactly (`moto/core/serialize.py`, EC2Serializer and
BaseXMLSerializer, then `xmltodict.unparse`):

* a member whose value is None is left out; a structure with no member set is `<x/>`,
  but an empty structure inside a list is dropped;
* a non-flattened list is `<x><item>..</item></x>`, an empty one `<x/>`;
* strings are `str(value)`, booleans `true` unless neither `value is True` nor
  `str(value).lower() == "true"`, integers `int(value)`, timestamps through moto's own
  TimestampSerializer; text escaped as `xml.sax.saxutils.escape` does (&, <, >).

Anything else (maps, blobs, XML attributes or namespaces on members, an item whose
picker keys cannot be cached, a protocol other than EC2's) makes the whole answer go
through moto's serializer unchanged. `tests/test_fast_xml.py` compares both writers'
bytes on images of every kind the emulator makes. `POST /_emulator/configure
{"fast_xml": false}` turns it off.
"""
from __future__ import annotations

from typing import Any, Callable
from xml.sax.saxutils import escape, quoteattr

from moto import settings
from moto.core.responses import ActionResult
from moto.core.serialize import AttributePickerContext, EC2Serializer, XFormedAttributePicker
from moto.core.utils import MISSING, get_value

from . import faults, state
from .dispatch_cache import alias_cache_key, transform_for


class Unsupported(Exception):
    """A shape or value this writer does not handle: moto's serializer writes the answer."""


Writer = Callable[[Any, list], None]

# Writers by (operation, response class, transformers); None: moto's serializer writes it.
_compiled: dict[tuple, Writer | None] = {}
MAX_DEPTH = 24


def enabled() -> bool:
    return bool(state.SETTINGS.get("fast_xml", True))


def _text(out: list, name: str, text: str) -> None:
    if text:
        out.append(f"<{name}>{escape(text)}</{name}>")
    else:
        out.append(f"<{name}/>")


def _element(out: list, name: str, body: list) -> None:
    """`<name>…</name>` around `body`, or `<name/>` when it is empty (xmltodict's short form)."""
    if body:
        out.append(f"<{name}>")
        out.extend(body)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}/>")


def _scalar_writer(shape: Any, serializer: EC2Serializer) -> Callable[[Any], str]:
    kind = shape.type_name
    if kind == "string":
        return str
    if kind == "boolean":
        return lambda v: "true" if (v is True or str(v).lower() == "true") else "false"
    if kind in ("integer", "long"):
        return lambda v: str(int(v))
    if kind in ("float", "double"):
        return lambda v: str(float(v))
    if kind == "timestamp":
        stamps = serializer._timestamp_serializer

        def stamp(v: Any) -> str:
            wrapper: dict = {}
            stamps.serialize(wrapper, v, shape, "timestamp")
            out = wrapper["timestamp"]
            return out if isinstance(out, str) else str(out)
        return stamp
    raise Unsupported(f"shape type {kind}")


def _plain(cls: type) -> bool:
    """Attribute lookup on instances of `cls` is Python's default one, over an instance
    `__dict__`: no `__getattr__`, `__getattribute__` or `__slots__` in the way."""
    return (cls.__getattribute__ is object.__getattribute__
            and not hasattr(cls, "__getattr__")
            and all("__slots__" not in vars(c) for c in cls.__mro__ if c is not object))


def _getter(cls: type, key: str) -> Callable[[Any], Any]:
    """`moto.core.utils.get_value(obj, key, MISSING)` for objects of class `cls`, without
    its per-call checks: a key the class does not define can only be in the instance's
    `__dict__` (a miss is then one dict lookup, not a failed getattr)."""
    if not isinstance(key, str) or "." in key:
        return lambda obj: get_value(obj, key, MISSING)
    if cls is dict:
        return lambda obj: obj.get(key, MISSING)
    if hasattr(cls, "__getitem__"):
        return lambda obj: get_value(obj, key, MISSING)
    if _plain(cls) and not any(key in vars(c) for c in cls.__mro__):
        return lambda obj: obj.__dict__.get(key, MISSING)
    return lambda obj: getattr(obj, key, MISSING)


class _Member:
    """One member of a structure: how moto picks its value and how it is written."""

    __slots__ = ("key", "shape", "name", "key_path", "transform", "write", "keys")

    def __init__(self, key: str, shape: Any, name: str, key_path: str, transform: Any,
                 write: Callable[[Any, list], bool]) -> None:
        self.key, self.shape, self.name = key, shape, name
        self.key_path, self.transform, self.write = key_path, transform, write
        self.keys: dict[type, tuple] = {}


def _check_plain(shape: Any) -> None:
    if shape.serialization.get("xmlNamespace") or shape.serialization.get("xmlAttribute"):
        raise Unsupported(f"{shape.name}: XML namespace or attribute")


def _compile(shape: Any, serializer: EC2Serializer, path: list[str], name: str,
             in_list: bool) -> Callable[[Any, list], bool]:
    """A writer of `shape` under element `name`: appends to `out`, returns whether it
    wrote anything (an empty structure in a list writes nothing)."""
    _check_plain(shape)
    if len(path) > MAX_DEPTH:
        raise Unsupported(f"{shape.name}: nested deeper than {MAX_DEPTH}")
    kind = shape.type_name
    if kind == "structure":
        if getattr(shape, "is_document_type", False):
            raise Unsupported("document type")
        picker = serializer._value_picker
        transformers = getattr(picker, "response_transformers", None)
        key_path = ".".join(path)
        members = []
        for member_key, member_shape in shape.members.items():
            member_shape.parent = shape  # as moto's serializer sets it
            member_name = member_shape.serialization.get("name", member_key)
            transform = (transform_for(transformers, f"{key_path}.{member_key}")
                         if transformers else None)
            members.append(_Member(member_key, member_shape, member_name, key_path, transform,
                                   _compile(member_shape, serializer, path + [member_key],
                                            member_name, False)))

        def pick(member: _Member, obj: Any) -> Any:
            cls = type(obj)
            getters = member.keys.get(cls)
            if getters is None:
                context = AttributePickerContext(
                    obj=obj, key=member.key, shape=member.shape,
                    operation_model=serializer.operation_model,
                    service_model=serializer.service_model, key_path=member.key_path)
                if alias_cache_key(context) is None:
                    raise Unsupported(f"{cls.__name__}: picker keys depend on the object")
                getters = member.keys[cls] = tuple(
                    _getter(cls, k) for k in picker.get_possible_keys(context))
            for get in getters:
                value = get(obj)
                if value is not MISSING:
                    break
            else:
                value = None
            if member.transform is not None:
                value = member.transform(value)
            return value

        def write_structure(obj: Any, out: list) -> bool:
            if obj is None:  # moto writes nothing for it, in a list or not
                return False
            body: list = []
            for member in members:
                value = pick(member, obj)
                if value is not None:
                    member.write(value, body)
            if in_list and not body:
                return False
            _element(out, name, body)
            return True
        return write_structure
    if kind == "list":
        if shape.is_flattened:
            raise Unsupported("flattened list")
        item = shape.member
        item_name = item.serialization.get("name", "member")
        write_item = _compile(item, serializer, path + [item.name], item_name, True)

        def write_list(value: Any, out: list) -> bool:
            body: list = []
            for element in value:
                write_item(element, body)
            _element(out, name, body)
            return True
        return write_list
    convert = _scalar_writer(shape, serializer)

    def write_scalar(value: Any, out: list) -> bool:
        _text(out, name, convert(value))
        return True
    return write_scalar


def compile_shape(serializer: EC2Serializer, response_class: type) -> Writer:
    """The writer of the operation's whole answer (members of its output shape)."""
    op = serializer.operation_model
    key = (op.name, response_class, id(serializer._value_picker.response_transformers))
    if key in _compiled:
        writer = _compiled[key]
        if writer is None:
            raise Unsupported(f"{op.name}: not compiled")
        return writer
    shape = op.output_shape
    try:
        write = _compile(shape, serializer, [serializer.operation_name, shape.name],
                         f"{op.name}Response", False)
    except Unsupported:
        _compiled[key] = None
        raise

    def writer(result: Any, out: list) -> None:
        write(result, out)
    _compiled[key] = writer
    return writer


def render(serializer: EC2Serializer, response_class: type, result: Any) -> str:
    """The answer's body, as moto's EC2Serializer writes it."""
    op = serializer.operation_model
    out: list = []
    compile_shape(serializer, response_class)(result, out)
    # The writer made `<XResponse>…</XResponse>` (or `<XResponse/>`): moto adds the
    # namespace attribute and the request id inside it.
    root = f"{op.name}Response"
    inner = out[1:-1] if out and out[0] == f"<{root}>" else []
    namespace = op.metadata.get("xmlNamespace")
    attrs = f" xmlns={quoteattr(namespace)}" if namespace else ""
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f"<{root}{attrs}>" + "".join(inner)
            + f"<requestId>{escape(serializer.context.request_id)}</requestId></{root}>")


class FastResult(ActionResult):
    """An ActionResult written by the compiled writer (moto's serializer when it cannot)."""

    def execute_result(self, context: Any):
        if (not enabled() or context.serializer_class is not EC2Serializer
                or settings.PRETTIFY_RESPONSES):
            return super().execute_result(context)
        transformers = getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
        serializer = EC2Serializer(
            operation_model=context.operation_model,
            value_picker=XFormedAttributePicker(response_transformers=transformers))
        try:
            body = render(serializer, type(context.response), self.result)
        except Unsupported:
            return super().execute_result(context)
        faults.count("fast_xml", context.response.region, context.operation_model.name)
        resp = serializer._create_default_response()
        resp["headers"]["Content-Type"] = serializer.CONTENT_TYPE
        return resp["status_code"], resp["headers"], body
