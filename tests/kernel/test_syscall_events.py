"""Watched syscalls from raw_syscalls:sys_enter, filtered in the kernel by syscall number."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.probe import ProcessProbe

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("kernel tests need root (CI runs them as root)", allow_module_level=True)

CLONE_NEWUTS = 0x04000000
PROGRAM = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare({CLONE_NEWUTS}) == 0        # a new namespace
os.memfd_create("garrison-syscall-test", 0)      # fileless staging
os.getpid()                                      # not watched
os.setgid(65534)
os.setuid(65534)                                 # dropping root
"""


def test_watched_syscalls_carry_their_arguments_and_nothing_else_is_reported() -> None:
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append)
    try:
        child = subprocess.run([sys.executable, "-c", PROGRAM], check=True)
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            probe.poll(50)
    finally:
        probe.close()
    assert child.returncode == 0
    python_pids = {e.pid for e in seen if e.type == "exec" and e.exe == sys.executable}
    calls = [e for e in seen if e.type == "syscall" and e.pid in python_pids]
    names = [e.syscall for e in calls]
    assert names[:4] == ["unshare", "memfd_create", "setgid", "setuid"]
    by_name = {e.syscall: e for e in calls}
    assert by_name["unshare"].syscall_args[0] == CLONE_NEWUTS
    assert by_name["setuid"].syscall_args[0] == 65534
    assert by_name["setuid"].uid == 0  # still root when it asked
    assert by_name["unshare"].container_id == "host"
