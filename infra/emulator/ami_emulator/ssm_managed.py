"""Systems Manager managed instances: which EC2 instances have a registered SSM Agent.

moto has no managed-node model (no `DescribeInstanceInformation` at all). Here the
control API decides, per instance, what its agent looks like (`AGENTS`, an `Agent` per
instance id, set with `POST /_emulator/ssm/instances/<id>`): managed or not, PingStatus
(`Online` | `ConnectionLost` | `Inactive`), PlatformType (`Linux` | `Windows` |
`MacOS`), agent version, whether the AWS VSS components (`AwsVssComponents`) are
installed, and how the commands sent to it end (`outcome` success | failure | timeout,
after `delay_seconds` on the emulator's creation clock), with optional per-action
overrides (`{"freeze": {...}, "thaw": {...}}`: the command's `action`/`Action`
parameter picks one). An instance never set is not managed, as an instance without an
agent (or without the instance profile) is not on AWS.

`DescribeInstanceInformation` (added to moto's `SimpleSystemManagerResponse`) lists the
managed instances that exist (not terminated) in the caller's account and region, by id,
with `Filters` (`InstanceIds`, `PingStatus`, `PlatformTypes`, `ResourceType`,
`AgentVersion`, `tag:KEY`, `tag-key`) or the deprecated `InstanceInformationFilterList`
(same keys but tags), `MaxResults` 5–50 (model check; default 10) and `NextToken`.
"""
from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from typing import Any

from moto.ssm.exceptions import SSMException

from . import state

PING = ("Online", "ConnectionLost", "Inactive")
PLATFORMS = ("Linux", "Windows", "MacOS")
OUTCOMES = ("success", "failure", "timeout")
ACTIONS = ("freeze", "thaw")
DEFAULT_AGENT_VERSION = "3.3.1142.0"
PLATFORM_NAMES = {"Linux": ("Amazon Linux", "2023"), "Windows": ("Microsoft Windows Server 2022 Datacenter", "10.0.20348"),
                  "MacOS": ("macOS", "14.0")}
# How a command ends on this agent; the per-action dicts may override any of these.
OUTCOME_KEYS = ("outcome", "delay_seconds", "stdout", "stderr", "response_code")


@dataclass
class Agent:
    managed: bool = True
    ping: str = "Online"
    platform: str = "Linux"
    agent_version: str = DEFAULT_AGENT_VERSION
    vss: bool = True
    outcome: str = "success"
    delay_seconds: float = 0.0
    invocation_lag_seconds: float = 0.0
    stdout: str | None = None
    stderr: str | None = None
    response_code: int | None = None
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self, instance_id: str) -> dict[str, Any]:
        out = {"instance_id": instance_id, "managed": self.managed, "ping": self.ping,
               "platform": self.platform, "agent_version": self.agent_version, "vss": self.vss,
               "outcome": self.outcome, "delay_seconds": self.delay_seconds,
               "invocation_lag_seconds": self.invocation_lag_seconds}
        for k in ("stdout", "stderr", "response_code"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        out.update({a: copy.deepcopy(v) for a, v in self.actions.items()})
        return out

    def behaviour(self, action: str | None) -> dict[str, Any]:
        """How a command with this action ends: the agent's defaults, then the action's."""
        out = {k: getattr(self, k) for k in OUTCOME_KEYS}
        if action:
            out.update(self.actions.get(action.lower(), {}))
        return out


# instance id -> its agent (absent = not managed)
AGENTS: dict[str, Agent] = {}


def reset() -> None:
    with state.LOCK:
        AGENTS.clear()


def _check_outcome_keys(where: str, body: dict[str, Any]) -> None:
    if "outcome" in body and body["outcome"] not in OUTCOMES:
        raise ValueError(f"{where}outcome {body['outcome']!r} is not one of {list(OUTCOMES)}")
    for k in ("delay_seconds",):
        if k in body and (isinstance(body[k], bool) or not isinstance(body[k], (int, float)) or body[k] < 0):
            raise ValueError(f"{where}{k} must be a non-negative number of seconds, not {body[k]!r}")
    for k in ("stdout", "stderr"):
        if k in body and not isinstance(body[k], str):
            raise ValueError(f"{where}{k} must be a string")
    if "response_code" in body and (isinstance(body["response_code"], bool)
                                    or not isinstance(body["response_code"], int)):
        raise ValueError(f"{where}response_code must be an integer")


def configure(instance_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Merge `body` into the instance's agent (a new agent starts managed, Online, Linux,
    VSS components installed, commands succeeding at once). Raises ValueError, naming the
    key and the allowed values, and changes nothing, on a bad body."""
    allowed = {"managed", "ping", "platform", "agent_version", "vss", "invocation_lag_seconds",
               *OUTCOME_KEYS, *ACTIONS}
    unknown = set(body) - allowed
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    for k in ("managed", "vss"):
        if k in body and not isinstance(body[k], bool):
            raise ValueError(f"{k} must be true or false, not {body[k]!r}")
    if "ping" in body and body["ping"] not in PING:
        raise ValueError(f"ping {body['ping']!r} is not one of {list(PING)}")
    if "platform" in body and body["platform"] not in PLATFORMS:
        raise ValueError(f"platform {body['platform']!r} is not one of {list(PLATFORMS)}")
    if "agent_version" in body and not isinstance(body["agent_version"], str):
        raise ValueError("agent_version must be a string such as \"3.3.1142.0\"")
    lag = body.get("invocation_lag_seconds", 0)
    if isinstance(lag, bool) or not isinstance(lag, (int, float)) or lag < 0:
        raise ValueError(f"invocation_lag_seconds must be a non-negative number, not {lag!r}")
    _check_outcome_keys("", body)
    for action in ACTIONS:
        if action in body:
            spec = body[action]
            if not isinstance(spec, dict) or set(spec) - set(OUTCOME_KEYS):
                raise ValueError(f"{action} must be an object with keys among {list(OUTCOME_KEYS)}")
            _check_outcome_keys(f"{action}.", spec)
    with state.LOCK:
        agent = AGENTS.get(instance_id) or Agent()
        for k, v in body.items():
            if k in ACTIONS:
                agent.actions.setdefault(k, {}).update(v)
            else:
                setattr(agent, k, float(v) if k in ("delay_seconds", "invocation_lag_seconds") else v)
        AGENTS[instance_id] = agent
        return agent.describe(instance_id)


def agent(instance_id: str) -> Agent | None:
    """The agent of a managed instance, or None when it is not managed."""
    a = AGENTS.get(instance_id)
    return a if a is not None and a.managed else None


def live_instance(account: str, region: str, instance_id: str) -> Any | None:
    """moto's instance in that account+region, unless unknown or terminated."""
    backend = state.ec2_backend(account, region)
    for reservation in backend.reservations.values():
        for inst in reservation.instances:
            if inst.id == instance_id:
                return None if inst._state.name in ("terminated", "shutting-down") else inst
    return None


def _information(inst: Any, a: Agent) -> dict[str, Any]:
    name, version = PLATFORM_NAMES[a.platform]
    info = {
        "InstanceId": inst.id,
        "PingStatus": a.ping,
        "LastPingDateTime": state.creation_clock(),
        "AgentVersion": a.agent_version,
        "IsLatestVersion": a.agent_version == DEFAULT_AGENT_VERSION,
        "PlatformType": a.platform,
        "PlatformName": name,
        "PlatformVersion": version,
        "ResourceType": "EC2Instance",
        "ComputerName": f"ip-{(inst.private_ip or '10.0.0.1').replace('.', '-')}.ec2.internal",
    }
    if inst.private_ip:
        info["IPAddress"] = inst.private_ip
    return info


FILTER_FIELDS = {"InstanceIds": "InstanceId", "PingStatus": "PingStatus", "PlatformTypes": "PlatformType",
                 "ResourceType": "ResourceType", "AgentVersion": "AgentVersion"}


def _filters(raw_filters: list[dict[str, Any]], raw_list: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    if raw_filters and raw_list:
        raise SSMException("InvalidFilterKey", "Use either Filters or InstanceInformationFilterList (deprecated), "
                                               "not both in one DescribeInstanceInformation call.")
    out = []
    for f in raw_filters or []:
        out.append((f["Key"], list(f["Values"])))
    for f in raw_list or []:
        out.append((f["key"], list(f["valueSet"])))
    tags = [k for k, _ in out if k.startswith("tag:") or k == "tag-key"]
    for key, _ in out:
        if key not in FILTER_FIELDS and not (raw_filters and (key.startswith("tag:") or key == "tag-key")):
            raise SSMException("InvalidFilterKey",
                               f"Filter key {key!r} is not supported here; use one of "
                               f"{sorted(FILTER_FIELDS)} (or tag:KEY / tag-key in Filters).")
    if tags and len(tags) < len(out):
        raise SSMException("InvalidFilterKey", "Tag filters can't be combined with other filter types.")
    return out


def _matches(info: dict[str, Any], inst: Any, filters: list[tuple[str, list[str]]]) -> bool:
    for key, values in filters:
        tags = {t["key"]: t["value"] for t in inst.get_tags()} if key.startswith("tag") else {}
        if key == "tag-key":
            if not set(tags) & set(values):
                return False
        elif key.startswith("tag:"):
            if tags.get(key[4:]) not in values:
                return False
        elif info[FILTER_FIELDS[key]] not in values:
            return False
    return True


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"emulator-dii:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        prefix, n = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix == "emulator-dii" and int(n) >= 0:
            return int(n)
    except (ValueError, UnicodeDecodeError):
        pass
    raise SSMException("InvalidNextToken", f"The NextToken {token!r} was not handed out by "
                                           "DescribeInstanceInformation: start again without NextToken.")


def describe_instance_information(self):
    from moto.core.responses import ActionResult

    filters = _filters(self._get_param("Filters") or [], self._get_param("InstanceInformationFilterList") or [])
    max_results = int(self._get_param("MaxResults") or 10)
    start = _offset(self._get_param("NextToken"))
    with state.LOCK:
        backend = state.ec2_backend(self.current_account, self.region)
        found = []
        for reservation in backend.reservations.values():
            for inst in reservation.instances:
                a = agent(inst.id)
                if a is None or inst._state.name in ("terminated", "shutting-down"):
                    continue
                info = _information(inst, a)
                if _matches(info, inst, filters):
                    found.append(info)
    found.sort(key=lambda i: i["InstanceId"])
    page = found[start:start + max_results]
    result: dict[str, Any] = {"InstanceInformationList": page}
    if start + max_results < len(found):
        result["NextToken"] = _token(start + max_results)
    return ActionResult(result)


def install() -> None:
    from moto.ssm.responses import SimpleSystemManagerResponse

    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information
