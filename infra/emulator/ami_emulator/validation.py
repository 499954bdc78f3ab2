"""Every request checked against the AWS API model before moto sees it.

moto accepts almost anything: more ids than the API allows, unknown parameters,
out-of-range numbers, strings of any length. AWS refuses those with HTTP 400, so a
client that passes here but breaks a model limit would fail on AWS. This WSGI layer
checks each request against botocore's service model (the model AWS publishes for
its SDKs) for the services the emulator serves, in both wire protocols:

* EC2 / query (EC2, STS; form body `Action=…&Foo.N.Bar=…`): the flattened keys are
  rebuilt into the input shape; a key that does not map to a member is unknown;
* JSON (KMS, SSM, EventBridge, SQS, CloudWatch Logs, Organizations; `X-Amz-Target` +
  JSON body).

Constraints checked: required members, unknown members, list/map min/max size,
string min/max length, pattern (where the model has one that Python's `re`
compiles), integer/long/float min/max, enum values, scalar types.

Answers as the services do (HTTP 400):
* EC2 XML `<Response><Errors><Error><Code>` with the common client error codes of
  the EC2 API reference ("Error codes for the Amazon EC2 API"): `MissingParameter`,
  `UnknownParameter`, `InvalidParameterValue`; one error (the first found);
* query (STS): `<ErrorResponse>` with `ValidationError` (`MissingParameter` for a
  missing member);
* JSON: `{"__type": "ValidationException", "message": "N validation errors detected:
  Value '…' at '…' failed to satisfy constraint: Member must …"}` (the Coral
  wording); a wrong JSON type is `SerializationException`; SQS (awsQueryCompatible)
  also sends `x-amzn-query-error: InvalidParameterValue;Sender` (MissingParameter for
  a missing member), from which SDKs take the error code SQS has always used;
  Organizations answers `{"__type": "InvalidInputException", "Reason": …}` instead, with
  the reason its API reference names (`INPUT_REQUIRED`, `MIN_VALUE_EXCEEDED`,
  `MAX_VALUE_EXCEEDED`, `MIN_LENGTH_EXCEEDED`, `MAX_LENGTH_EXCEEDED`, `INVALID_ENUM`,
  `INVALID_PATTERN`, `INVALID_LIST_MEMBER`).

Parsed shapes are cached per operation (the bench makes thousands of calls a second).
`strict` in the emulator config (default true) turns the layer off for diagnosis.
Every refusal is counted (`refused` in GET /_emulator/counters) and, when the
environment names a file in AMI_EMULATOR_REFUSED_LOG, appended to it as one JSON line
(service, operation, problems): a way to see what a whole test suite sends that AWS
would refuse, even where the client tolerates the error.
"""
from __future__ import annotations

import io
import json
import os
import re
import threading
import uuid
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from . import faults, state
from .accounts import SCOPE_RE
from .errors import wsgi_error

# Signing name in the credential scope -> botocore service name.
SERVICES = {"ec2": "ec2", "sts": "sts", "kms": "kms", "ssm": "ssm", "events": "events",
            "sqs": "sqs", "logs": "logs", "organizations": "organizations",
            "dynamodb": "dynamodb"}
# Query parameters every request may carry (protocol and SigV2/SigV4 query auth).
COMMON_QUERY = {"Action", "Version", "AWSAccessKeyId", "Signature", "SignatureMethod",
                "SignatureVersion", "Timestamp", "Expires", "SecurityToken",
                "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders",
                "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Expires"}
LEAF = None  # key of a value in the rebuilt query tree (parts are always strings)

MISSING, UNKNOWN, INVALID, TYPE = "missing", "unknown", "invalid", "type"


class Problem:
    __slots__ = ("kind", "path", "message", "ec2_message")

    def __init__(self, kind: str, path: str, message: str, ec2_message: str | None = None):
        self.kind, self.path, self.message = kind, path, message
        self.ec2_message = ec2_message  # EC2's own wording where it differs from ours


# --------------------------------------------------------------------------- models

_lock = threading.Lock()
_session = None
_models: dict[str, Any] = {}
_ops: dict[tuple[str, str], Any] = {}
_patterns: dict[str, Any] = {}
_query_names: dict[tuple[bool, int], dict[str, str]] = {}


def operation_model(service: str, operation: str):
    """botocore OperationModel, or None if the service/operation is not modelled."""
    key = (service, operation)
    if key in _ops:
        return _ops[key]
    global _session
    with _lock:
        if _session is None:
            import botocore.session

            _session = botocore.session.get_session()
        if service not in _models:
            _models[service] = _session.get_service_model(service)
        model = _models[service]
        op = model.operation_model(operation) if operation in model.operation_names else None
        _ops[key] = op
        return op


def pattern(regex: str):
    """Compiled model pattern, or False when Python cannot compile it (Java-only syntax)."""
    if regex not in _patterns:
        try:
            _patterns[regex] = re.compile(regex)
        except re.error:
            _patterns[regex] = False
    return _patterns[regex]


def member_names(shape, ec2: bool) -> dict[str, str]:
    """Structure: wire name -> member name (EC2: queryName, else capitalised locationName)."""
    key = (ec2, id(shape))
    names = _query_names.get(key)
    if names is None:
        names = {}
        for name, member in shape.members.items():
            ser = member.serialization
            if ec2 and "queryName" in ser:
                wire = ser["queryName"]
            elif "name" in ser:
                wire = ser["name"][0].upper() + ser["name"][1:] if ec2 else ser["name"]
            else:
                wire = name
            names[wire] = name
        _query_names[key] = names
    return names


# ----------------------------------------------------------------------- constraints

def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 64 else text[:61] + "..."


def check_scalar(shape, value: Any, path: str, out: list[Problem]) -> None:
    """Length, range, enum and pattern of one already-typed value."""
    md = shape.metadata
    t = shape.type_name
    if t == "string":
        n = len(value)
        if "min" in md and n < md["min"]:
            out.append(Problem(INVALID, path, f"length {n} is below the minimum length {md['min']}"))
        if "max" in md and n > md["max"]:
            out.append(Problem(INVALID, path, f"length {n} is above the maximum length {md['max']}"))
        enum = md.get("enum")
        if enum and value not in enum:
            ec2 = None
            if path.startswith("TagSpecification.") and path.endswith(".ResourceType"):
                # EC2's wording for this one (moto's tests, recorded from AWS)
                ec2 = f"'{value}' is not a valid taggable resource type for this operation."
            out.append(Problem(INVALID, path, f"must be one of: {', '.join(enum)}", ec2))
        if "pattern" in md:
            rx = pattern(md["pattern"])
            if rx and not rx.fullmatch(value):  # Coral matches the whole value
                out.append(Problem(INVALID, path, f"must match the pattern {md['pattern']}"))
    elif t in ("integer", "long", "float", "double"):
        if "min" in md and value < md["min"]:
            out.append(Problem(INVALID, path, f"must be at least {md['min']}"))
        if "max" in md and value > md["max"]:
            out.append(Problem(INVALID, path, f"must be at most {md['max']}"))
    elif t == "blob":
        n = len(value)
        if "min" in md and n < md["min"]:
            out.append(Problem(INVALID, path, f"length {n} is below the minimum length {md['min']}"))
        if "max" in md and n > md["max"]:
            out.append(Problem(INVALID, path, f"length {n} is above the maximum length {md['max']}"))


def check_size(shape, n: int, path: str, out: list[Problem]) -> None:
    md = shape.metadata
    if "min" in md and n < md["min"]:
        out.append(Problem(INVALID, path, f"has {n} values; the minimum is {md['min']}"))
    if "max" in md and n > md["max"]:
        out.append(Problem(INVALID, path, f"has {n} values; the maximum is {md['max']}"))


def check_required(shape, present, path_of, out: list[Problem]) -> None:
    for name in shape.required_members:
        if name not in present:
            path = path_of(name)
            ec2 = None
            if shape.members[name].type_name == "list":
                # EC2 names a missing list by its internal set name: ResourceId.N ->
                # "The request must contain the parameter resourceIdSet" (moto's tests,
                # recorded from AWS).
                last = path.rsplit(".", 1)[-1]
                ec2 = f"The request must contain the parameter {last[:1].lower()}{last[1:]}Set"
            out.append(Problem(MISSING, path, "is required", ec2))


# ---------------------------------------------------------------- query / EC2 walker

def query_tree(params: list[tuple[str, str]]) -> dict:
    root: dict = {}
    for key, value in params:
        if key in COMMON_QUERY:
            continue
        node = root
        for part in key.split("."):
            node = node.setdefault(part, {})
        node[LEAF] = value
    return root


def walk_query(shape, node: dict, path: str, ec2: bool, out: list[Problem]) -> Any:
    """Rebuild the value of `shape` from its subtree, recording problems."""
    t = shape.type_name
    if t == "structure":
        names = member_names(shape, ec2)
        if LEAF in node and path:
            out.append(Problem(UNKNOWN, path, "takes sub-parameters, not a value"))
        present = {}
        for part, child in node.items():
            if part is LEAF:
                continue
            sub = f"{path}.{part}" if path else part
            name = names.get(part)
            if name is None:
                out.append(Problem(UNKNOWN, sub, "is not recognized"))
                continue
            present[name] = walk_query(shape.members[name], child, sub, ec2, out)
        wire = {v: k for k, v in names.items()}
        check_required(shape, present, lambda m: f"{path}.{wire[m]}" if path else wire[m], out)
        return present
    if t == "list":
        items_node, base = node, path
        if not ec2 and not shape.serialization.get("flattened"):
            if node.get(LEAF) == "" and len(node) == 1:
                check_size(shape, 0, path, out)  # query protocol: an empty list is `Name=`
                return []
            inner = shape.member.serialization.get("name", "member")
            items_node, base = node.get(inner, {}), f"{path}.{inner}"
            for part in node:
                if part is not LEAF and part != inner:
                    out.append(Problem(UNKNOWN, f"{path}.{part}", "is not recognized"))
        items = []
        for part, child in items_node.items():
            if part is LEAF:
                out.append(Problem(UNKNOWN, base, f"is a list: send {base}.1, {base}.2, ..."))
                continue
            if not part.isdigit() or int(part) < 1:
                out.append(Problem(UNKNOWN, f"{base}.{part}", "is not recognized"))
                continue
            items.append((int(part), walk_query(shape.member, child, f"{base}.{part}", ec2, out)))
        check_size(shape, len(items), path, out)
        return [v for _, v in sorted(items, key=lambda x: x[0])]
    if t == "map":
        flattened = shape.serialization.get("flattened")
        entries = node if flattened else node.get("entry", {})
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        result = {}
        for part, child in entries.items():
            if part is LEAF or not part.isdigit():
                out.append(Problem(UNKNOWN, f"{path}.{part}", "is not recognized"))
                continue
            sub = f"{path}{'' if flattened else '.entry'}.{part}"
            k = walk_query(shape.key, child.get(kname, {}), f"{sub}.{kname}", ec2, out)
            v = walk_query(shape.value, child.get(vname, {}), f"{sub}.{vname}", ec2, out)
            result[k] = v
        check_size(shape, len(result), path, out)
        return result
    # scalar
    for part in node:
        if part is not LEAF:
            out.append(Problem(UNKNOWN, f"{path}.{part}", "is not recognized"))
    raw = node.get(LEAF, "")
    value = convert_query_scalar(shape, raw, path, out)
    if value is not None:
        check_scalar(shape, value, path, out)
    return value


def convert_query_scalar(shape, raw: str, path: str, out: list[Problem]) -> Any:
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(raw)
        if t in ("float", "double"):
            return float(raw)
    except ValueError:
        out.append(Problem(INVALID, path, f"must be {'an integer' if t in ('integer', 'long') else 'a number'}"))
        return None
    if t == "boolean":
        if raw.lower() not in ("true", "false"):
            out.append(Problem(INVALID, path, "must be true or false"))
            return None
        return raw.lower() == "true"
    if t == "blob":
        return raw.encode()
    return raw  # string, timestamp


# ----------------------------------------------------------------------- JSON walker

JSON_TYPES = {"string": str, "boolean": bool, "blob": str, "timestamp": (int, float, str),
              "integer": int, "long": int, "float": (int, float), "double": (int, float)}
JSON_TYPE_NAMES = {"structure": "an object", "map": "an object", "list": "an array",
                   "string": "a string", "boolean": "a boolean", "blob": "a base64 string",
                   "timestamp": "a timestamp", "integer": "an integer", "long": "an integer",
                   "float": "a number", "double": "a number"}


def walk_json(shape, value: Any, path: str, out: list[Problem]) -> None:
    t = shape.type_name
    if value is None:
        return  # JSON null is "not set"
    if t == "structure":
        if shape.is_document_type:
            return
        if not isinstance(value, dict):
            out.append(Problem(TYPE, path, f"must be {JSON_TYPE_NAMES[t]}"))
            return
        names = {m.serialization.get("name", n): n for n, m in shape.members.items()}
        present = set()
        for key, sub in value.items():
            name = names.get(key)
            where = f"{path}.{key}" if path else key
            if name is None:
                out.append(Problem(UNKNOWN, where, "is not a member of "
                                   f"{shape.name} (members: {', '.join(names)})"))
                continue
            if sub is not None:
                present.add(name)
            walk_json(shape.members[name], sub, where, out)
        check_required(shape, present, lambda m: f"{path}.{m}" if path else m, out)
        return
    if t == "list":
        if not isinstance(value, list):
            out.append(Problem(TYPE, path, f"must be {JSON_TYPE_NAMES[t]}"))
            return
        check_size(shape, len(value), path, out)
        for i, item in enumerate(value, 1):
            walk_json(shape.member, item, f"{path}.{i}.member", out)
        return
    if t == "map":
        if not isinstance(value, dict):
            out.append(Problem(TYPE, path, f"must be {JSON_TYPE_NAMES[t]}"))
            return
        check_size(shape, len(value), path, out)
        for k, v in value.items():
            walk_json(shape.key, k, f"{path}.{k}.key", out)
            walk_json(shape.value, v, f"{path}.{k}.value", out)
        return
    want = JSON_TYPES.get(t)
    if want is not None and (not isinstance(value, want)
                             or (t not in ("boolean",) and isinstance(value, bool))):
        out.append(Problem(TYPE, path, f"must be {JSON_TYPE_NAMES[t]}"))
        return
    if t == "blob":
        return  # base64 text; the service checks the decoded length
    check_scalar(shape, value, path, out)


# -------------------------------------------------------------------------- answers

def _lc(path: str) -> str:
    """Coral names members lowerCamelCase in messages: Tags.1.member.Key -> tags.1.member.key."""
    return ".".join(p[:1].lower() + p[1:] for p in path.split("."))


def ec2_answer(start_response, problems: list[Problem]):
    p = sorted(problems, key=lambda x: {UNKNOWN: 0, MISSING: 1}.get(x.kind, 2))[0]
    code = {UNKNOWN: "UnknownParameter", MISSING: "MissingParameter"}.get(p.kind,
                                                                           "InvalidParameterValue")
    if p.ec2_message:
        return wsgi_error(start_response, 400, code, p.ec2_message)
    if p.kind == UNKNOWN:
        return wsgi_error(start_response, 400, "UnknownParameter",
                          f"The parameter {p.path} is not recognized")
    if p.kind == MISSING:
        return wsgi_error(start_response, 400, "MissingParameter",
                          f"The request must contain the parameter {p.path}")
    return wsgi_error(start_response, 400, "InvalidParameterValue",
                      f"Value for parameter {p.path} is invalid: it {p.message}.")


def query_answer(start_response, problems: list[Problem]):
    p = problems[0]
    code = "MissingParameter" if p.kind == MISSING else "ValidationError"
    body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            f"<Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{escape(coral_message(problems))}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
    start_response("400 Bad Request", [("Content-Type", "text/xml"),
                                       ("Content-Length", str(len(body)))])
    return [body]


def coral_message(problems: list[Problem]) -> str:
    parts = []
    for p in problems:
        if p.kind == MISSING:
            parts.append(f"Value null at '{_lc(p.path)}' failed to satisfy constraint: "
                         "Member must not be null")
        elif p.kind == UNKNOWN:
            parts.append(f"Parameter '{p.path}' {p.message}")
        else:
            parts.append(f"Value at '{_lc(p.path)}' failed to satisfy constraint: "
                         f"Member {p.message}")
    n = len(parts)
    return f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(parts)


def organizations_reason(p: Problem) -> str | None:
    """InvalidInputException `Reason` (Organizations API reference) for a model violation."""
    if p.kind == MISSING:
        return "INPUT_REQUIRED"
    if p.kind != INVALID:
        return None
    for needle, reason in (("below the minimum length", "MIN_LENGTH_EXCEEDED"),
                           ("above the maximum length", "MAX_LENGTH_EXCEEDED"),
                           ("must be at least", "MIN_VALUE_EXCEEDED"),
                           ("must be at most", "MAX_VALUE_EXCEEDED"),
                           ("must be one of", "INVALID_ENUM"),
                           ("must match the pattern", "INVALID_PATTERN"),
                           ("values; the", "INVALID_LIST_MEMBER")):
        if needle in p.message:
            return reason
    return None


def json_answer(start_response, environ, service: str, problems: list[Problem]):
    if any(p.kind == TYPE for p in problems):
        typed = [p for p in problems if p.kind == TYPE][0]
        kind, message = "SerializationException", f"'{typed.path}' {typed.message}"
    else:
        kind, message = "ValidationException", coral_message(problems)
    headers = [("Content-Type", environ.get("CONTENT_TYPE") or "application/x-amz-json-1.1"),
               ("x-amzn-RequestId", str(uuid.uuid4()))]
    if service == "organizations" and kind == "ValidationException":
        reason = organizations_reason(problems[0])
        if reason:  # Organizations answers model violations with InvalidInputException
            body = json.dumps({"__type": "InvalidInputException", "Message": message,
                               "Reason": reason}).encode()
            headers.append(("Content-Length", str(len(body))))
            start_response("400 Bad Request", headers)
            return [body]
    if service == "sqs":
        code = "MissingParameter" if problems[0].kind == MISSING else "InvalidParameterValue"
        headers.append(("x-amzn-query-error", f"{code};Sender"))
        kind = "com.amazon.coral.validate#" + kind
    body = json.dumps({"__type": kind, "message": message}).encode()
    headers.append(("Content-Length", str(len(body))))
    start_response("400 Bad Request", headers)
    return [body]


# ----------------------------------------------------------------------- middleware

def validate(environ, body: bytes) -> tuple[str, list[Problem]] | None:
    """-> (protocol, problems) for a modelled request, None to let it through."""
    m = SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = SERVICES.get(m.group(2)) if m else None
    if service is None:
        return None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        op = operation_model(service, target.rsplit(".", 1)[-1])
        if op is None or op.service_model.protocol != "json" or op.input_shape is None:
            return None
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            return "json", [Problem(TYPE, "body", "is not valid JSON")]
        out: list[Problem] = []
        walk_json(op.input_shape, value, "", out)
        return "json", out
    params = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if "form-urlencoded" in (environ.get("CONTENT_TYPE") or ""):
        params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    action = next((v for k, v in params if k == "Action"), None)
    if not action:
        return None
    op = operation_model(service, action)
    protocol = op.service_model.protocol if op is not None else None
    if protocol not in ("ec2", "query"):
        return None  # e.g. SQS's legacy query form: its model is JSON-only now
    out = []
    if op.input_shape is not None:
        walk_query(op.input_shape, query_tree(params), "", protocol == "ec2", out)
    else:
        out = [Problem(UNKNOWN, k, "is not recognized") for k, _ in params if k not in COMMON_QUERY]
    return protocol, out


def record(environ, body: bytes, problems: list[Problem]) -> None:
    m = SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    region, service = (m.group(1), m.group(2)) if m else ("?", "?")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        operation = target.rsplit(".", 1)[-1]
    else:
        params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        operation = next((v for k, v in params if k == "Action"), "?")
    faults.count("refused", region, f"{service}:{operation}")
    path = os.environ.get("AMI_EMULATOR_REFUSED_LOG")
    if path:
        line = json.dumps({"service": service, "region": region, "operation": operation,
                           "problems": [f"{p.kind} {p.path}: {p.message}" for p in problems]})
        with _lock, open(path, "a") as f:
            f.write(line + "\n")


class ValidationMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if not state.SETTINGS.get("strict", True) or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        checked = validate(environ, body)
        if not checked or not checked[1]:
            return self.app(environ, start_response)
        protocol, problems = checked
        record(environ, body, problems)
        if protocol == "ec2":
            return ec2_answer(start_response, problems)
        if protocol == "query":
            return query_answer(start_response, problems)
        service = SERVICES.get(SCOPE_RE.search(environ["HTTP_AUTHORIZATION"]).group(2))
        return json_answer(start_response, environ, service, problems)
