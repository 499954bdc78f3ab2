#!/usr/bin/env python3
"""moto's own EC2 tests for AMIs, snapshots/volumes and tags, run against OUR emulator.

    python infra/emulator/moto_suite/run.py [--cache DIR] [pytest args...]

Fetches moto's source release pinned to the installed moto version (`pip download
--no-binary :all: moto==X`) into the cache (default `.venv/moto-src`, git-ignored),
unpacks only the test files needed, starts `launcher.py` on a free 127.0.0.1 port and
runs the selected test files with moto's server mode (TEST_SERVER_MODE=true, the
endpoint pointed at the launcher). Every test listed in `differences.md` (with the AWS
documentation that justifies it) is deselected; any other failure fails the run.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(EMULATOR))
TEST_FILES = ["tests/test_ec2/test_amis.py", "tests/test_ec2/test_elastic_block_store.py",
              "tests/test_ec2/test_tags.py"]
# What those files import from moto's test tree.
SUPPORT = ["tests/__init__.py", "tests/conftest.py", "tests/markers.py",
           "tests/test_ec2/__init__.py", "tests/test_ec2/conftest.py",
           "tests/test_ec2/helpers.py", "tests/test_ec2/test_instances.py"]
ROW = re.compile(r"^\|\s*`(tests/[^`]+::[^`]+)`\s*\|")


def deselected() -> list[str]:
    with open(os.path.join(HERE, "differences.md")) as f:
        return [m.group(1) for line in f if (m := ROW.match(line))]


def fetch(cache: str) -> str:
    import moto

    version = moto.__version__
    src = os.path.join(cache, f"moto-{version}")
    if all(os.path.exists(os.path.join(src, p)) for p in TEST_FILES + SUPPORT):
        return src
    os.makedirs(cache, exist_ok=True)
    sdist = os.path.join(cache, f"moto-{version}.tar.gz")
    if not os.path.exists(sdist):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                        "--disable-pip-version-check", "--no-deps", "--no-binary", ":all:",
                        f"moto=={version}", "-d", cache], check=True)
    with tarfile.open(sdist) as tar:
        wanted = {f"moto-{version}/{p}" for p in TEST_FILES + SUPPORT}
        tar.extractall(cache, members=[m for m in tar.getmembers() if m.name in wanted],
                       filter="data")
    return src


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default=os.path.join(ROOT, ".venv", "moto-src"))
    args, pytest_args = parser.parse_known_args()
    src = fetch(args.cache)
    # A probed port can be taken before the launcher binds it (`make test` runs the Rust
    # tests, which start emulators of their own, beside this): then another is tried.
    for _ in range(3):
        port = free_port()
        emulator = subprocess.Popen([sys.executable, os.path.join(EMULATOR, "launcher.py"),
                                     "--host", "127.0.0.1", "--port", str(port)],
                                    stdout=subprocess.PIPE, text=True)
        line = emulator.stdout.readline()
        if "emulator ready" in line:
            break
        emulator.kill()
    try:
        if "emulator ready" not in line:
            print(f"emulator did not start on port {port}: {line!r}", file=sys.stderr)
            return 1
        env = dict(os.environ, TEST_SERVER_MODE="true",
                   TEST_SERVER_MODE_ENDPOINT=f"http://127.0.0.1:{port}",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
               "-W", "ignore::pytest.PytestUnknownMarkWarning", *TEST_FILES]
        for test_id in deselected():
            cmd += ["--deselect", test_id]
        return subprocess.run(cmd + pytest_args, cwd=src, env=env).returncode
    finally:
        emulator.send_signal(signal.SIGTERM)
        try:
            emulator.wait(timeout=5)
        except subprocess.TimeoutExpired:
            emulator.kill()


if __name__ == "__main__":
    sys.exit(main())
