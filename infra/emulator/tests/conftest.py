"""Fixtures: one emulator process per test module, reset before every test."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(os.path.dirname(HERE), "launcher.py")
# The launcher and the emulator's package, for tests that import them directly.
sys.path.insert(0, os.path.dirname(HERE))
ACCOUNT_A = "123456789012"
ACCOUNT_B = "111122223333"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    def __init__(self, url: str):
        self.url = url

    def control(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(self.url + "/_emulator" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def client(self, service: str, region: str = "us-east-1", account: str = ACCOUNT_A,
               retries: int = 1):
        # A 12-digit access key id selects that account (see ami_emulator/accounts.py).
        key = account if account != ACCOUNT_A else "AKIDEXAMPLE"
        return boto3.client(
            service, region_name=region, endpoint_url=self.url,
            aws_access_key_id=key, aws_secret_access_key="secret",
            config=Config(retries={"total_max_attempts": retries, "mode": "standard"}))


class Zygote:
    """`launcher.py --zygote`, once per test session: it imports moto once and forks a fresh
    emulator per module (~20 ms) instead of each module's launcher importing it again."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, LAUNCHER, "--zygote"], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def start(self) -> tuple[int, int]:
        """A new emulator: (its port, its pid)."""
        self.proc.stdin.write("start\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()  # emulator ready on http://127.0.0.1:PORT pid PID
        words = line.split()
        if words[:3] != ["emulator", "ready", "on"] or len(words) != 6 or words[4] != "pid":
            raise RuntimeError(f"the emulator zygote did not start an emulator: {line!r}")
        return int(words[3].rsplit(":", 1)[1]), int(words[5])

    def stop(self, pid: int) -> None:
        self.proc.stdin.write(f"stop {pid}\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.stdin.close()  # the zygote kills what it started and exits
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def zygote():
    z = Zygote()
    yield z
    z.close()


@pytest.fixture(scope="session")
def server():
    """The emulator's app served from this test process (a thread on a free port), for
    tests that switch a part of it off between two answers to the same request. One per
    session: building the app installs the emulator's patches into moto, once."""
    import launcher
    from ami_emulator.serving import make_server

    srv = make_server("127.0.0.1", 0, launcher.build_app())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def emulator(zygote):
    port, pid = zygote.start()
    yield Emulator(f"http://127.0.0.1:{port}")
    zygote.stop(pid)


@pytest.fixture
def emu(emulator):
    emulator.control("POST", "/reset")
    return emulator


@pytest.fixture
def ec2(emu):
    return emu.client("ec2")


def launch(ec2, image_id: str = "ami-12c6146b", **kw):
    """An instance to image. moto accepts any image id for RunInstances."""
    resp = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro", **kw)
    return resp["Instances"][0]["InstanceId"]


def wait_state(ec2, image_id: str, want: str, emu=None, timeout: float = 5.0):
    deadline = time.time() + timeout
    while True:
        if emu is not None:
            emu.control("POST", "/tick")
        img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        if img["State"] == want or time.time() > deadline:
            return img
        time.sleep(0.05)


def make_image(ec2, emu, name="img", **kw):
    iid = launch(ec2)
    image_id = ec2.create_image(InstanceId=iid, Name=name, NoReboot=True, **kw)["ImageId"]
    wait_state(ec2, image_id, "available", emu)
    return image_id
