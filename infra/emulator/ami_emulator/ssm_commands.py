"""Systems Manager Run Command: SendCommand and GetCommandInvocation as an agent runs them.

moto's SendCommand accepts any document and any instance, and every invocation is
`Success` at once (with a fixed 5-minute elapsed time). Patched here on moto's
`SimpleSystemManagerResponse` (`send_command`, `get_command_invocation`); moto still
records the command (ListCommands):

* `DocumentName` (a name or a document ARN) must be a `Command` document of moto's SSM in
  the caller's account and region (CreateDocument; `DocumentVersion` `$DEFAULT`,
  `$LATEST` or a number), or one of the AWS-owned documents known here
  (`AWSEC2-ManageVssIO`, `AWS-RunShellScript`, `AWS-RunPowerShellScript`); otherwise
  `InvalidDocument` (`InvalidDocumentVersion` for a missing version).
* `Parameters` must be declared by the document, every declared parameter without a
  default must be given, and values must be among `allowedValues` → `InvalidParameters`.
* Every instance (`InstanceIds`, or resolved from `Targets`) must exist in the account and
  region, not terminated, be managed (ssm_managed.py) and `Online` → `InvalidInstanceId`
  (AWS's message `Instances [[…]] not in a valid state for account …`), and run a platform
  the document supports (`aws:runShellScript` steps: Linux/MacOS; `aws:runPowerShellScript`
  and `AWSEC2-ManageVssIO`: Windows) → `UnsupportedPlatformType`. Nothing is recorded then.
* The answer's `Status` is `Pending` (moto: `Success`); ListCommands shows each command's
  status from its invocations' (moto: always `Success`).

GetCommandInvocation computes the invocation from the instance's agent as it was when
the command was sent, on the emulator's creation clock (so `clock_offset_seconds` moves
it): `InvocationDoesNotExist` for an unknown command/instance pair (and, for
`invocation_lag_seconds` after sending, as AWS answers just after SendCommand — botocore's
`CommandExecuted` waiter retries on it); `InProgress` (ResponseCode -1) until
`delay_seconds` have passed, then `Success` (0) or `Failed` (1); outcome `timeout` stays
`InProgress` and ends `TimedOut` (StatusDetails `ExecutionTimedOut`) when the execution
timeout has passed: the document's `executionTimeout` parameter if sent, else 3600 s (the
default of `aws:runShellScript`). SendCommand's `TimeoutSeconds` is AWS's *delivery*
timeout: an Online agent takes the command at once, so it never expires here.
`AWSEC2-ManageVssIO` on an instance whose agent says `"vss": false` fails (ResponseCode 1)
with a StandardErrorContent saying the AwsVssComponents package (the EC2 VSS requester and
provider) is missing (AWS documents the package as required; the wording is ours). AWS
documents that VSS allows at most 10 s between Freeze and Thaw ("could result in errors"):
a VSS Thaw sent more than 10 s after the last Freeze completed fails, saying so.
Each invocation is also recorded on the instance's timeline (timeline.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.ssm.exceptions import SSMException
from moto.ssm.responses import SimpleSystemManagerResponse

from . import ssm_managed, state, timeline

VSS_DOCUMENT = "AWSEC2-ManageVssIO"
VSS_MAX_FREEZE_SECONDS = 10  # "Freeze and Thaw actions [must] be called no more than ten seconds apart"
DEFAULT_EXECUTION_TIMEOUT = 3600  # aws:runShellScript / aws:runPowerShellScript default
VSS_MISSING = ("AwsVssComponents is not installed on this instance: the EC2 VSS requester and "
               "provider that AWSEC2-ManageVssIO needs are missing. Install the AwsVssComponents "
               "package (AWS-ConfigureAWSPackage, action Install) and send the command again.")
STEP_PLATFORMS = {"aws:runShellScript": {"Linux", "MacOS"}, "aws:runPowerShellScript": {"Windows"}}
ALL_PLATFORMS = set(ssm_managed.PLATFORMS)
# AWS-owned documents known here: parameters (None = any) and platforms.
AWS_DOCUMENTS: dict[str, dict[str, Any]] = {
    VSS_DOCUMENT: {"parameters": {"Action": {"type": "String", "allowedValues": ["Freeze", "Thaw"]},
                                  "executionTimeout": {"type": "String", "default": "3600"}},
                   "platforms": {"Windows"}},
    "AWS-RunShellScript": {"parameters": {"commands": {"type": "StringList"},
                                          "workingDirectory": {"type": "String", "default": ""},
                                          "executionTimeout": {"type": "String", "default": "3600"}},
                           "platforms": {"Linux", "MacOS"}},
    "AWS-RunPowerShellScript": {"parameters": {"commands": {"type": "StringList"},
                                               "workingDirectory": {"type": "String", "default": ""},
                                               "executionTimeout": {"type": "String", "default": "3600"}},
                                "platforms": {"Windows"}},
}


@dataclass
class Invocation:
    command_id: str
    instance_id: str
    document: str
    document_version: str
    comment: str
    parameters: dict[str, list[str]]
    sent: datetime
    lag: float
    outcome: str
    delay: float
    execution_timeout: float
    stdout: str
    stderr: str
    response_code: int
    plugin: str = "aws:runShellScript"
    extra: dict[str, Any] = field(default_factory=dict)

    def visible(self, now: datetime) -> bool:
        return now >= self.sent + timedelta(seconds=self.lag)

    def status(self, now: datetime) -> tuple[str, str, datetime | None]:
        """(Status, StatusDetails, end time or None while running) at `now`."""
        if self.outcome == "timeout":
            end = self.sent + timedelta(seconds=self.execution_timeout)
            return ("TimedOut", "ExecutionTimedOut", end) if now >= end else ("InProgress", "InProgress", None)
        end = self.sent + timedelta(seconds=self.delay)
        if now < end:
            return "InProgress", "InProgress", None
        return ("Success", "Success", end) if self.outcome == "success" else ("Failed", "Failed", end)

    def answer(self, now: datetime) -> dict[str, Any]:
        status, details, end = self.status(now)
        out: dict[str, Any] = {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "Comment": self.comment,
            "DocumentName": self.document,
            "DocumentVersion": self.document_version,
            "PluginName": self.plugin,
            "ResponseCode": -1,
            "ExecutionStartDateTime": timeline.clock_iso(self.sent),
            "ExecutionElapsedTime": _duration((end or now) - self.sent),
            "Status": status,
            "StatusDetails": details,
            "StandardOutputContent": "",
            "StandardOutputUrl": "",
            "StandardErrorContent": "",
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        }
        if end is not None:
            out["ExecutionEndDateTime"] = timeline.clock_iso(end)
            if status in ("Success", "Failed"):
                out["ResponseCode"] = self.response_code
                out["StandardOutputContent"] = self.stdout[:24000]
                out["StandardErrorContent"] = self.stderr[:8000]
        return out


# (account, region, command id, instance id) -> invocation
INVOCATIONS: dict[tuple[str, str, str, str], Invocation] = {}


def reset() -> None:
    with state.LOCK:
        INVOCATIONS.clear()


def _duration(delta: timedelta) -> str:
    return f"PT{max(delta.total_seconds(), 0.0):.3f}S"


def _document_name(raw: str) -> str:
    # arn:aws:ssm:us-east-1:123456789012:document/NAME or arn:aws:ssm:us-east-1::document/NAME
    return raw.split(":document/", 1)[1] if raw.startswith("arn:") and ":document/" in raw else raw


def find_document(ssm_backend: Any, raw_name: str, version: str | None) -> dict[str, Any]:
    """{name, version, parameters, platforms, plugin} of the document SendCommand names."""
    name = _document_name(raw_name)
    docs = ssm_backend._documents.get(name)
    if docs is None:
        known = AWS_DOCUMENTS.get(name)
        if known is None:
            raise SSMException("InvalidDocument",
                               f"Document {raw_name} does not exist in {ssm_backend.region_name} for account "
                               f"{ssm_backend.account_id}: create it with CreateDocument (DocumentType Command), "
                               f"or name an AWS-owned document such as {VSS_DOCUMENT}.")
        plugin = "aws:runPowerShellScript" if known["platforms"] == {"Windows"} else "aws:runShellScript"
        return {"name": name, "version": "1", "parameters": known["parameters"],
                "platforms": known["platforms"], "plugin": plugin}
    if version in (None, "", "$DEFAULT"):
        doc = docs.get_default_version()
    elif version == "$LATEST":
        doc = docs.get_latest_version()
    else:
        doc = docs.find_by_version(version)
    if doc is None:
        raise SSMException("InvalidDocumentVersion",
                           f"Document {name} has no version {version}: pass $DEFAULT, $LATEST or an existing version.")
    if doc.document_type != "Command":
        raise SSMException("InvalidDocument",
                           f"Document {name} is of type {doc.document_type}; SendCommand runs documents of type Command.")
    content = doc.content_json or {}
    steps = content.get("mainSteps") or []
    if not steps and isinstance(content.get("runtimeConfig"), dict):
        steps = [{"action": k, "name": k} for k in content["runtimeConfig"]]
    platforms: set[str] = set()
    for step in steps:
        platforms |= STEP_PLATFORMS.get(step.get("action"), ALL_PLATFORMS)
    return {"name": name, "version": str(doc.document_version), "parameters": content.get("parameters") or {},
            "platforms": platforms or ALL_PLATFORMS,
            "plugin": (steps[0].get("name") if steps else None) or "aws:runShellScript"}


def check_parameters(document: dict[str, Any], parameters: dict[str, list[str]]) -> None:
    declared = document["parameters"]
    name = document["name"]
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise SSMException("InvalidParameters",
                           f"Document {name} does not declare parameter(s) {unknown}; it declares {sorted(declared)}.")
    missing = sorted(k for k, spec in declared.items()
                     if k not in parameters and "default" not in (spec or {}))
    if missing:
        raise SSMException("InvalidParameters",
                           f"Document {name} requires parameter(s) {missing}, which the request does not give.")
    for k, values in parameters.items():
        allowed = (declared[k] or {}).get("allowedValues")
        bad = [v for v in values if allowed is not None and v not in allowed]
        if bad:
            raise SSMException("InvalidParameters",
                               f"Parameter {k} of document {name}: {bad} not among the allowed values {allowed}.")


def _target_instance_ids(account: str, region: str, targets: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    filters = {}
    for t in targets or []:
        if t.get("Key") == "InstanceIds":
            ids += list(t.get("Values") or [])
        else:
            filters[t.get("Key")] = t.get("Values") or []
    if filters:
        for reservation in state.ec2_backend(account, region).all_reservations(filters=filters):
            ids += [i.id for i in reservation.instances]
    return ids


def _action(parameters: dict[str, list[str]]) -> str | None:
    values = parameters.get("action") or parameters.get("Action") or []
    return values[0].lower() if values else None


def send_command(self):
    account, region = self.current_account, self.region
    parameters = self._get_param("Parameters") or {}
    instance_ids = list(self._get_param("InstanceIds") or [])
    with state.LOCK:
        document = find_document(self.ssm_backend, self._get_param("DocumentName"),
                                 self._get_param("DocumentVersion"))
        check_parameters(document, parameters)
        targets = instance_ids + _target_instance_ids(account, region, self._get_param("Targets") or [])
        targets = list(dict.fromkeys(targets))
        bad = [i for i in targets
               if ssm_managed.live_instance(account, region, i) is None
               or ssm_managed.agent(i) is None or ssm_managed.agent(i).ping != "Online"]
        if bad:
            raise SSMException("InvalidInstanceId",
                               f"Instances [[{', '.join(bad)}]] not in a valid state for account {account} "
                               "(not managed by Systems Manager, agent not Online, or not running in "
                               f"{region}: check DescribeInstanceInformation).")
        for i in targets:
            platform = ssm_managed.agent(i).platform
            if platform not in document["platforms"]:
                raise SSMException("UnsupportedPlatformType",
                                   f"Document {document['name']} supports {sorted(document['platforms'])}; "
                                   f"instance {i} is {platform}.")

        result = original["send_command"](self)
        command = result.result["Command"]
        command.update({"Status": "Pending", "StatusDetails": "Pending", "CompletedCount": 0})
        command_id = command["CommandId"]
        now = state.creation_clock()
        action = _action(parameters)
        try:
            execution_timeout = float((parameters.get("executionTimeout") or [DEFAULT_EXECUTION_TIMEOUT])[0])
        except ValueError:
            execution_timeout = DEFAULT_EXECUTION_TIMEOUT
        for i in targets:
            agent = ssm_managed.agent(i)
            b = agent.behaviour(action)
            outcome, stderr, code = b["outcome"], b["stderr"], b["response_code"]
            if document["name"] == VSS_DOCUMENT and not agent.vss:
                outcome, stderr, code = "failure", VSS_MISSING, 1
            elif document["name"] == VSS_DOCUMENT and action == "thaw":
                late = _vss_thaw_too_late(account, region, i, now)
                if late is not None:
                    outcome, stderr, code = "failure", late, 1
            what = f"{document['name']} {action or ''}".strip()
            INVOCATIONS[(account, region, command_id, i)] = Invocation(
                command_id=command_id, instance_id=i, document=document["name"],
                document_version=document["version"], comment=self._get_param("Comment") or "",
                parameters=parameters, sent=now, lag=agent.invocation_lag_seconds, outcome=outcome,
                delay=float(b["delay_seconds"]), execution_timeout=execution_timeout,
                stdout=b["stdout"] if b["stdout"] is not None else (f"{what}: done" if outcome == "success" else ""),
                stderr=stderr if stderr is not None else ("" if outcome == "success" else f"{what}: failed (emulated)"),
                response_code=code if code is not None else (0 if outcome == "success" else 1),
                plugin=document["plugin"])
            timeline.record(i, "command", region=region, command_id=command_id, document=document["name"],
                            parameters=parameters, action=action, comment=self._get_param("Comment") or "",
                            timeout_seconds=self._get_param("TimeoutSeconds"))
        return result


def _vss_thaw_too_late(account: str, region: str, instance_id: str, now: datetime) -> str | None:
    """Why a VSS Thaw sent now fails: the last successful Freeze on the instance ended more
    than 10 s ago, so VSS has already released the I/O on its own (or None)."""
    freezes = [inv for (a, r, _, i), inv in INVOCATIONS.items()
               if (a, r, i) == (account, region, instance_id) and inv.document == VSS_DOCUMENT
               and _action(inv.parameters) == "freeze"]
    if not freezes:
        return None
    last = max(freezes, key=lambda inv: inv.sent)
    status, _, end = last.status(now)
    if status != "Success" or end is None:
        return None
    gap = (now - end).total_seconds()
    if gap <= VSS_MAX_FREEZE_SECONDS:
        return None
    return (f"Thaw came {gap:.1f} s after the Freeze completed; VSS keeps I/O paused for at most "
            f"{VSS_MAX_FREEZE_SECONDS} s and resumed it on its own, so snapshots started after that are "
            "not application-consistent. Send Thaw within 10 s of Freeze (CreateImage in between).")


def _command_status(statuses: list[str]) -> str:
    """A command's status from its invocations' (MaxErrors 0, the default)."""
    for s in ("InProgress", "Failed", "TimedOut"):
        if s in statuses:
            return s
    return "Success"


def list_commands(self):
    result = original["list_commands"](self)
    with state.LOCK:
        now = state.creation_clock()
        for command in result.result.get("Commands", []):
            invs = [inv for (a, r, c, _), inv in INVOCATIONS.items()
                    if (a, r, c) == (self.current_account, self.region, command["CommandId"])]
            if not invs:
                continue
            statuses = [inv.status(now)[0] for inv in invs]
            status = _command_status(statuses)
            command.update({"Status": status, "StatusDetails": status,
                            "CompletedCount": sum(s != "InProgress" for s in statuses),
                            "ErrorCount": sum(s in ("Failed", "TimedOut") for s in statuses)})
    return result


def invocation_status(account: str, region: str, command_id: str, instance_id: str) -> str | None:
    inv = INVOCATIONS.get((account, region, command_id, instance_id))
    return None if inv is None else inv.status(state.creation_clock())[0]


def get_command_invocation(self):
    from moto.core.responses import ActionResult

    command_id = self._get_param("CommandId")
    instance_id = self._get_param("InstanceId")
    with state.LOCK:
        inv = INVOCATIONS.get((self.current_account, self.region, command_id, instance_id))
        now = state.creation_clock()
        if inv is None or not inv.visible(now):
            raise SSMException("InvocationDoesNotExist",
                               f"No invocation of command {command_id} on instance {instance_id} in "
                               f"{self.region}: check both ids (the pair SendCommand answered).")
        return ActionResult(inv.answer(now))


original: dict[str, Any] = {}


def install() -> None:
    for fn in (send_command, get_command_invocation, list_commands):
        original[fn.__name__] = getattr(SimpleSystemManagerResponse, fn.__name__)
        setattr(SimpleSystemManagerResponse, fn.__name__, fn)
