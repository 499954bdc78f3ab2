"""Control API contract and launcher behaviour."""
import signal
import subprocess
import sys
import urllib.error

import pytest

from conftest import LAUNCHER, Emulator, Zygote, free_port, launch


def test_config_merges_and_reads_back(emu):
    cfg = emu.control("GET", "/config")
    assert cfg["pending_seconds"] == 0.0 and cfg["copy_cap"] is None and cfg["buckets"] is False
    emu.control("POST", "/config", {"latency_ms": 5, "copy_cap": 3})
    emu.control("POST", "/config", {"seed": 7})
    cfg = emu.control("GET", "/config")
    assert (cfg["latency_ms"], cfg["copy_cap"], cfg["seed"]) == (5, 3, 7)
    with pytest.raises(urllib.error.HTTPError) as err:
        emu.control("POST", "/config", {"no_such_setting": 1})
    assert err.value.code == 400


def test_reset_clears_moto_extension_and_fault_state(ec2, emu):
    iid = launch(ec2)
    ec2.create_image(InstanceId=iid, Name="before-reset")
    emu.control("POST", "/config", {"latency_ms": 1})
    assert emu.control("GET", "/reboots")
    emu.control("POST", "/reset")
    assert emu.control("GET", "/reboots") == {}
    assert emu.control("GET", "/config")["latency_ms"] == 0
    assert emu.control("GET", "/counters")["calls"] == {}
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert ec2.describe_instances()["Reservations"] == []


def test_tick_and_fail_endpoints(ec2, emu):
    emu.control("POST", "/config", {"pending_seconds": 60})
    slow = ec2.create_image(InstanceId=launch(ec2), Name="slow-one", NoReboot=True)["ImageId"]
    assert emu.control("POST", "/tick") == {"available": []}
    emu.control("POST", f"/images/{slow}/fail")
    assert ec2.describe_images(ImageIds=[slow])["Images"][0]["State"] == "failed"
    with pytest.raises(urllib.error.HTTPError) as err:  # no longer pending
        emu.control("POST", f"/images/{slow}/fail")
    assert err.value.code == 404


def test_last_launched_endpoint_unknown_image(emu):
    with pytest.raises(urllib.error.HTTPError) as err:
        emu.control("POST", "/images/ami-0000000000/last-launched", {"time": "2026-11-01T00:00:00Z"})
    assert err.value.code == 404


def test_launcher_refuses_non_loopback_host():
    proc = subprocess.run([sys.executable, LAUNCHER, "--host", "0.0.0.0", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "refusing" in proc.stderr


def test_launcher_exits_cleanly_on_sigterm():
    port = free_port()
    proc = subprocess.Popen([sys.executable, LAUNCHER, "--host", "localhost", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    ready = proc.stdout.readline().strip()
    assert ready == f"emulator ready on http://127.0.0.1:{port} pid {proc.pid}"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_moto_api_reset_clears_emulator_state(ec2, emu):
    import urllib.request

    from conftest import make_image

    source = make_image(ec2, emu, "reset-src")
    first = ec2.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="tok-copy",
                           ClientToken="reused-token")["ImageId"]
    emu.control("POST", "/config", {"latency_ms": 1, "strict": False})
    req = urllib.request.Request(emu.url + "/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    cfg = emu.control("GET", "/config")
    assert cfg["latency_ms"] == 0 and cfg["strict"] is True
    assert emu.control("GET", "/counters")["calls"] == {}
    # the token is forgotten with the image: the same token makes a new copy
    source = make_image(ec2, emu, "reset-src")
    second = ec2.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="tok-copy",
                            ClientToken="reused-token")["ImageId"]
    assert second != first
    assert ec2.describe_images(ImageIds=[second])["Images"][0]["ImageId"] == second


def _gone(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie child of ours counts as gone once it has exited
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1].startswith("Z")


def _wait_gone(pids, seconds):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _children(pid: int) -> list[int]:
    import glob

    out = []
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(path) as f:
                fields = f.read().split(") ", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(path.split("/")[2]))
    return out


def test_sigterm_while_importing_exits_at_once():
    import time

    proc = subprocess.Popen([sys.executable, LAUNCHER, "--port", str(free_port())],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # inside the moto import, long before "ready"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("kill_make", ["SIGTERM", "SIGKILL"])
def test_setsid_make_emulator_stops_within_two_seconds(kill_make):
    """`setsid make emulator &` in a script, then the script signals make's pid."""
    import os
    import time

    root = os.path.dirname(os.path.dirname(os.path.dirname(LAUNCHER)))
    venv_py = os.path.join(root, ".venv", "emulator", "bin", "python")
    port = free_port()
    # -o: never (re)install the venv from a test; EMULATOR_PY: this interpreter
    proc = subprocess.Popen(
        ["setsid", "make", "--no-print-directory", "-f", "infra/emulator/emulator.mk",
         "-o", ".venv/emulator/.installed", "emulator", f"EMULATOR_PORT={port}",
         f"EMULATOR_PY={venv_py if os.path.exists(venv_py) else sys.executable}"],
        cwd=root, stdout=subprocess.PIPE, text=True)
    line = ""
    while "emulator ready" not in line:
        line = proc.stdout.readline()
        assert line, "make emulator ended before the emulator was ready"
    pythons = _children(proc.pid)
    assert pythons, "no emulator process under make"
    start = time.monotonic()
    os.kill(proc.pid, getattr(signal, kill_make))
    assert _wait_gone([proc.pid] + pythons, 2.0), f"still running after 2 s of {kill_make}"
    assert time.monotonic() - start < 2.0
    proc.wait(timeout=5)


def test_zygote_forks_fresh_emulators_and_takes_them_down_with_it():
    zygote = Zygote()
    first_port, first = zygote.start()
    first_emu = Emulator(f"http://127.0.0.1:{first_port}")
    first_emu.control("POST", "/config", {"latency_ms": 7})
    second_port, second = zygote.start()
    second_emu = Emulator(f"http://127.0.0.1:{second_port}")
    # Each child is its own emulator: the second has none of the first's state.
    assert first_port != second_port and first != second
    assert first_emu.control("GET", "/config")["latency_ms"] == 7
    assert second_emu.control("GET", "/config")["latency_ms"] == 0
    zygote.stop(first)
    assert _wait_gone([first], 5)
    assert second_emu.control("GET", "/config")["latency_ms"] == 0
    _, third = zygote.start()
    zygote.close()  # the starting process went away: every child goes too
    assert zygote.proc.returncode == 0
    assert _wait_gone([second, third], 5)
