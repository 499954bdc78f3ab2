"""The shipped Linux quiesce document (`QuiesceLinuxDocument`), run for real.

The document is read from template.yaml (and must be identical in infra/forwarder.yaml), its
parameters are pasted into the script text the way Systems Manager does (`{{ name }}`), and the
script runs under bash in a temporary directory: `AMI_LIFECYCLE_ROOT` points every absolute
path it uses (/etc/ami-lifecycle, /run/ami-lifecycle, /proc/self/mounts) there, and stub
`fsfreeze` / `sync` on PATH log their calls to one file, next to the hooks' own lines. The stub
fsfreeze behaves like the real one: freezing a frozen filesystem fails (EBUSY), thawing one that
is not frozen fails with "Invalid argument" (EINVAL), and it can be told to fail on one mount.

`Sandbox` holds one such directory; `run_document` runs the script there. Every test ends by
killing whatever the sandbox left running (the watchdog is detached, in its own session) and
asserting nothing was left.

Run: make pattern-test  (or .venv/tools/bin/pytest infra/tests/test_quiesce_document.py)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_event_patterns import Resolver, load_template

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")

FSFREEZE_STUB = r"""#!/bin/bash
# stub fsfreeze: logs the call; frozen mounts are files in $STUB_FROZEN_DIR
echo "fsfreeze $*" >>"$STUB_LOG"
op=$1 m=$2 f="$STUB_FROZEN_DIR/$(echo "$2" | tr / _)"
if [ "$op" = -f ]; then
    if [ "$m" = "${STUB_FSFREEZE_FAIL:-}" ]; then echo "fsfreeze: $m: freeze failed: Operation not supported" >&2; exit 1; fi
    [ -e "$f" ] && { echo "fsfreeze: $m: freeze failed: Device or resource busy" >&2; exit 1; }
    touch "$f"
else
    [ -e "$f" ] || { echo "fsfreeze: $m: unfreeze failed: Invalid argument" >&2; exit 1; }
    rm -f "$f"
fi
"""
SYNC_STUB = '#!/bin/bash\necho "sync" >>"$STUB_LOG"\n'
MOUNT_TABLE = """/dev/nvme0n1p1 / xfs rw,noatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/nvme1n1 /data xfs rw,noatime 0 0
/dev/nvme2n1 /var/lib/mysql ext4 rw,noatime 0 0
/dev/nvme0n1p1 /srv/bound xfs rw,noatime 0 0
"""


def document(path: Path, params: dict[str, str] | None = None) -> dict:
    t = load_template(path)
    (doc,) = [v for v in t["Resources"].values() if v["Type"] == "AWS::SSM::Document"]
    return Resolver(t, params or {}).resolve(doc)


@pytest.fixture(scope="module")
def doc() -> dict:
    return document(ROOT / "template.yaml")


def script_of(doc: dict) -> str:
    (step,) = doc["Properties"]["Content"]["mainSteps"]
    (text,) = step["inputs"]["runCommand"]
    return text


def substitute(doc: dict, given: dict[str, str]) -> str:
    """The script as Systems Manager runs it: defaults filled in, every {{ name }} replaced,
    each value first checked against the parameter's allowedValues / allowedPattern."""
    declared = doc["Properties"]["Content"]["parameters"]
    assert set(given) <= set(declared), set(given) - set(declared)
    values = {}
    for name, spec in declared.items():
        value = given.get(name, spec.get("default"))
        assert value is not None, f"{name} is required"
        if "allowedValues" in spec:
            assert value in spec["allowedValues"], (name, value)
        if "allowedPattern" in spec:
            assert re.fullmatch(spec["allowedPattern"], value), (name, value)
        values[name] = value
    text = script_of(doc)
    unknown = set(PLACEHOLDER.findall(text)) - set(declared)
    assert not unknown, f"placeholders without a parameter: {unknown}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


class Sandbox:
    """A root directory for one run of the document, with stub tools and a call log."""

    def __init__(self, base: Path):
        self.root = base / "root"
        self.bin = base / "bin"
        self.log = base / "calls.log"
        self.frozen = base / "frozen"
        for d in (self.root / "etc/ami-lifecycle/pre-freeze.d", self.root / "etc/ami-lifecycle/post-thaw.d",
                  self.root / "proc/self", self.bin, self.frozen):
            d.mkdir(parents=True)
        (self.root / "proc/self/mounts").write_text(MOUNT_TABLE)
        self.log.write_text("")
        for name, text in (("fsfreeze", FSFREEZE_STUB), ("sync", SYNC_STUB)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.env = {**os.environ, "AMI_LIFECYCLE_ROOT": str(self.root), "PATH": f"{self.bin}:{os.environ['PATH']}",
                    "STUB_LOG": str(self.log), "STUB_FROZEN_DIR": str(self.frozen)}

    def hook(self, phase: str, name: str, body: str = "exit 0", executable: bool = True) -> None:
        p = self.root / "etc/ami-lifecycle" / f"{phase}.d" / name
        p.write_text(f'#!/bin/bash\necho "hook {phase} {name}" >>"$STUB_LOG"\n{body}\n')
        p.chmod(0o755 if executable else 0o644)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def frozen_now(self) -> set[str]:
        return {p.name.replace("_", "/") for p in self.frozen.iterdir()}

    @property
    def state_dir(self) -> Path:
        return self.root / "run/ami-lifecycle"

    def watchdog_pid(self) -> int | None:
        p = self.state_dir / "watchdog.pid"
        return int(p.read_text()) if p.exists() else None

    def leftovers(self) -> list[int]:
        """Processes (ours) whose environment points at this sandbox."""
        marker = f"AMI_LIFECYCLE_ROOT={self.root}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids


@pytest.fixture
def box(tmp_path):
    sandbox = Sandbox(tmp_path)
    yield sandbox
    left = sandbox.leftovers()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left running: {left}"


def run_document(doc: dict, box: Sandbox, **params: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", substitute(doc, params)], env=box.env, capture_output=True, text=True,
                          timeout=60)


def wait_for(predicate, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


# ----------------------------------------------------------------------------
# The resource: the same document in both templates, named after the deployment
# ----------------------------------------------------------------------------

def test_document_resource(doc):
    p = doc["Properties"]
    assert p["Name"] == "ami-lifecycle-quiesce-linux"
    assert (p["DocumentType"], p["DocumentFormat"], p["UpdateMethod"]) == ("Command", "YAML", "NewVersion")
    content = p["Content"]
    assert content["schemaVersion"] == "2.2"
    assert set(content["parameters"]) == {"action", "mounts", "maxFreezeSeconds", "hookTimeoutSeconds"}
    assert content["parameters"]["action"]["allowedValues"] == ["freeze", "thaw"]
    assert [content["parameters"][k].get("default") for k in ("mounts", "maxFreezeSeconds", "hookTimeoutSeconds")] == \
        ["", "120", "30"]
    (step,) = content["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    assert step["precondition"] == {"StringEquals": ["platformType", "Linux"]}
    assert script_of(doc).startswith("#!/bin/bash\n")
    assert document(ROOT / "template.yaml", {"DeploymentName": "prod2"})["Properties"]["Name"] == "prod2-quiesce-linux"


def test_forwarder_ships_the_identical_document(doc):
    other = document(ROOT / "infra/forwarder.yaml", {"HomeRegion": "eu-west-1"})
    assert other["Properties"] == doc["Properties"]
    # the home region's copy is the main stack's: the forwarder's would collide with it by name
    assert other["Condition"] == "NotHomeRegion"


def test_parameters_keep_shell_syntax_out(doc):
    """Systems Manager pastes the values into the script: the patterns admit no quote, space,
    $, ;, backquote, glob or newline, so no value can leave its quotes."""
    params = doc["Properties"]["Content"]["parameters"]
    mounts = params["mounts"]["allowedPattern"]
    for good in ("", "/data", "/data,/var/lib/mysql", "/mnt/vol-1_a.b@c+d"):
        assert re.fullmatch(mounts, good), good
    for bad in ("/data'", "/data /x", "/data;reboot", "$(reboot)", "`reboot`", "/data\n/x", "/d*", '/d"', "/{{ action }}"):
        assert not re.fullmatch(mounts, bad), bad
    for name in ("maxFreezeSeconds", "hookTimeoutSeconds"):
        pattern = params[name]["allowedPattern"]
        assert re.fullmatch(pattern, "120") and not re.fullmatch(pattern, "1.5") and not re.fullmatch(pattern, "")


def test_script_assigns_each_parameter_once_quoted(doc):
    text = script_of(doc)
    assert sorted(PLACEHOLDER.findall(text)) == sorted(doc["Properties"]["Content"]["parameters"])
    for line in text.splitlines():
        if PLACEHOLDER.search(line):
            assert re.fullmatch(r"export [A-Z_]+='\{\{ [A-Za-z]+ \}\}'", line), line


# ----------------------------------------------------------------------------
# freeze and thaw
# ----------------------------------------------------------------------------

def test_freeze_then_thaw(doc, box):
    box.hook("pre-freeze", "20-flush")
    box.hook("pre-freeze", "10-lock")
    box.hook("pre-freeze", "30-notes.txt", executable=False)  # not executable: skipped
    box.hook("post-thaw", "10-unlock")
    box.hook("post-thaw", "20-resume")
    r = run_document(doc, box, action="freeze", mounts="/data,/var/lib/mysql/", maxFreezeSeconds="60")
    assert r.returncode == 0, r.stderr
    assert box.calls() == ["hook pre-freeze 10-lock", "hook pre-freeze 20-flush", "sync",
                           "fsfreeze -f /data", "fsfreeze -f /var/lib/mysql"]
    assert box.frozen_now() == {"/data", "/var/lib/mysql"}
    pid = box.watchdog_pid()
    assert pid is not None and alive(pid), "a watchdog guards the freeze"
    assert os.getsid(pid) == pid, "the watchdog leads its own session (setsid): it outlives the command"

    r = run_document(doc, box, action="thaw")  # the recorded freeze is thawed, whatever mounts says
    assert r.returncode == 0, r.stderr
    assert box.calls()[5:] == ["fsfreeze -u /var/lib/mysql", "fsfreeze -u /data",
                               "hook post-thaw 10-unlock", "hook post-thaw 20-resume"]
    assert box.frozen_now() == set()
    assert wait_for(lambda: not alive(pid), 5), "thaw stops the watchdog"
    assert box.watchdog_pid() is None
    assert "stopped the watchdog" in r.stdout

    # a second thaw finds nothing recorded: mounts not frozen are not an error, hooks run once
    r = run_document(doc, box, action="thaw", mounts="/data")
    assert r.returncode == 0, r.stderr
    assert box.calls()[9:] == ["fsfreeze -u /data"]


def test_freeze_without_mounts_runs_the_hooks_only(doc, box):
    box.hook("pre-freeze", "10-lock")
    box.hook("post-thaw", "10-unlock")
    assert run_document(doc, box, action="freeze").returncode == 0
    assert run_document(doc, box, action="thaw").returncode == 0
    assert box.calls() == ["hook pre-freeze 10-lock", "sync", "hook post-thaw 10-unlock"]


def test_failing_hook_fails_the_freeze(doc, box):
    box.hook("pre-freeze", "10-lock")
    box.hook("pre-freeze", "20-flush", "exit 3")
    box.hook("pre-freeze", "30-never")
    box.hook("post-thaw", "10-unlock")
    r = run_document(doc, box, action="freeze", mounts="/data")
    assert r.returncode != 0
    assert "20-flush (exited 3)" in r.stderr and "nothing frozen" in r.stderr
    assert box.calls() == ["hook pre-freeze 10-lock", "hook pre-freeze 20-flush", "hook post-thaw 10-unlock"]
    assert box.frozen_now() == set() and box.watchdog_pid() is None
    assert not (box.state_dir / "freeze").exists(), "nothing is left for a thaw to undo"


def test_hook_past_its_timeout_fails_the_freeze(doc, box):
    box.hook("pre-freeze", "10-slow", "sleep 30")
    r = run_document(doc, box, action="freeze", mounts="/data", hookTimeoutSeconds="1")
    assert r.returncode != 0
    assert "10-slow (timed out after 1s)" in r.stderr
    assert "fsfreeze -f /data" not in box.calls()


@pytest.mark.parametrize("mounts, message", [
    ("/", "refusing to freeze /"),
    ("/data,/", "refusing to freeze /"),
    ("data", "not an absolute path"),
    ("/data,,/var/lib/mysql", "empty entry"),
    ("/data/../etc", "not a plain path"),
    ("/srv", "not a mount point"),
    ("/srv/bound", "on the root filesystem's device"),
    ("/data,/data", "like another listed mount"),
])
def test_refused_mounts_change_nothing(doc, box, mounts, message):
    box.hook("pre-freeze", "10-lock")
    r = run_document(doc, box, action="freeze", mounts=mounts)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert box.calls() == [], "refused before any hook, sync or freeze"
    assert box.frozen_now() == set() and not (box.state_dir / "freeze").exists()


def test_unsafe_values_are_refused_by_the_script_too(doc, box):
    """Past the document's patterns (another caller, a hand-run copy): the script's own checks."""
    text = script_of(doc)
    for params, message in [({"mounts": "/data*"}, "has a character outside"),
                            ({"maxFreezeSeconds": "1.5"}, "maxFreezeSeconds '1.5' is not a whole number"),
                            ({"hookTimeoutSeconds": "0"}, "hookTimeoutSeconds '0' is not a whole number"),
                            ({"action": "melt"}, "action 'melt' is neither freeze nor thaw")]:
        values = {"action": "freeze", "mounts": "/data", "maxFreezeSeconds": "60", "hookTimeoutSeconds": "5", **params}
        r = subprocess.run(["bash", "-c", PLACEHOLDER.sub(lambda m: values[m.group(1)], text)], env=box.env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and message in r.stderr, (params, r.stderr)
    assert box.calls() == []


def test_fsfreeze_failure_thaws_the_mounts_before_it(doc, box):
    box.hook("post-thaw", "10-unlock")
    box.env["STUB_FSFREEZE_FAIL"] = "/var/lib/mysql"
    r = run_document(doc, box, action="freeze", mounts="/data,/var/lib/mysql")
    assert r.returncode != 0
    assert "freeze failed at /var/lib/mysql" in r.stderr and "Operation not supported" in r.stderr
    assert box.calls() == ["sync", "fsfreeze -f /data", "fsfreeze -f /var/lib/mysql", "fsfreeze -u /data",
                           "hook post-thaw 10-unlock"]
    assert box.frozen_now() == set() and box.watchdog_pid() is None


def test_second_freeze_while_frozen_is_refused(doc, box):
    assert run_document(doc, box, action="freeze", mounts="/data", maxFreezeSeconds="60").returncode == 0
    r = run_document(doc, box, action="freeze", mounts="/data")
    assert r.returncode != 0 and "a freeze is already in place (/data" in r.stderr
    assert box.calls() == ["sync", "fsfreeze -f /data"]
    assert run_document(doc, box, action="thaw").returncode == 0
    assert box.frozen_now() == set()


def test_thaw_fails_when_a_mount_stays_frozen(doc, box):
    assert run_document(doc, box, action="freeze", mounts="/data", maxFreezeSeconds="60").returncode == 0
    (box.bin / "fsfreeze").write_text('#!/bin/bash\necho "fsfreeze $*" >>"$STUB_LOG"\n'
                                      'echo "fsfreeze: $2: unfreeze failed: Input/output error" >&2\nexit 1\n')
    r = run_document(doc, box, action="thaw")
    assert r.returncode != 0 and "still frozen: /data" in r.stderr


# ----------------------------------------------------------------------------
# The watchdog
# ----------------------------------------------------------------------------

def test_watchdog_thaws_when_the_thaw_never_comes(doc, box):
    box.hook("post-thaw", "10-unlock")
    box.hook("post-thaw", "20-resume")
    started = time.monotonic()
    r = run_document(doc, box, action="freeze", mounts="/data,/var/lib/mysql", maxFreezeSeconds="1")
    assert r.returncode == 0, r.stderr
    pid = box.watchdog_pid()
    assert pid is not None
    assert box.frozen_now() == {"/data", "/var/lib/mysql"}, "still frozen right after the command"
    assert wait_for(lambda: "hook post-thaw 20-resume" in box.calls(), 15), box.calls()
    assert time.monotonic() - started >= 1.0
    assert box.calls()[3:] == ["fsfreeze -u /var/lib/mysql", "fsfreeze -u /data",
                               "hook post-thaw 10-unlock", "hook post-thaw 20-resume"]
    assert box.frozen_now() == set()
    assert wait_for(lambda: not alive(pid), 5)
    assert box.watchdog_pid() is None and not (box.state_dir / "freeze").exists()
    assert "no thaw within 1s" in (box.state_dir / "watchdog.log").read_text()

    # the late thaw finds the freeze undone: nothing stays frozen, the hooks do not run twice
    r = run_document(doc, box, action="thaw", mounts="/data,/var/lib/mysql")
    assert r.returncode == 0, r.stderr
    assert box.calls()[7:] == ["fsfreeze -u /data", "fsfreeze -u /var/lib/mysql"]


def test_freeze_stopped_half_way_undoes_itself(doc, box):
    """The command's timeout (or a cancel) stops the freeze before its watchdog is armed: it
    undoes what it did rather than leave it to a thaw that may never come."""
    box.hook("pre-freeze", "10-lock")
    box.hook("pre-freeze", "20-slow", "sleep 30")
    box.hook("post-thaw", "10-unlock")
    proc = subprocess.Popen(["bash", "-c", substitute(doc, {"action": "freeze", "mounts": "/data",
                                                              "hookTimeoutSeconds": "2"})],
                            env=box.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: "hook pre-freeze 20-slow" in box.calls(), 10)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode != 0
    assert "stopped by a signal" in err
    assert box.calls() == ["hook pre-freeze 10-lock", "hook pre-freeze 20-slow", "hook post-thaw 10-unlock"]
    assert box.frozen_now() == set() and not (box.state_dir / "freeze").exists() and box.watchdog_pid() is None
