"""How the emulator's threads share the interpreter: a short GIL switch interval.

Every connection is served by its own thread (werkzeug), and a request's token-bucket
check (faults.py) happens as soon as its thread runs. While another thread serialises a
large answer (a DescribeImages page of 1,000 images takes most of a second of pure
Python), each step of a new request's way to that check waits for the GIL for up to
the switch interval, 5 ms by default, several times. A client pacing at exactly the
bucket's rate then arrives "late" at one call and "on time" at the next, and the next
is refused although it was sent on time: at the cleanup bench's 20 deregistrations a
second a 1 ms slip is 0.02 of a token. A 0.5 ms interval keeps that slip well under a
millisecond; CPU-bound threads switch more often only while another thread waits.
"""
from __future__ import annotations

import sys

SWITCH_INTERVAL_SECONDS = 0.0005


def install() -> None:
    if sys.getswitchinterval() > SWITCH_INTERVAL_SECONDS:
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
