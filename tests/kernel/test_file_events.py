"""Opens of watched paths, filtered in the kernel by an LPM trie of prefixes."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.probe import DEFAULT_WATCHED_PATHS, READ_WRITE, ProcessProbe
from garrison.sensor.wire import WATCH_EXEC_BIT, WATCH_WRITE

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("kernel tests need root (CI runs them as root)", allow_module_level=True)


def drain(probe: ProcessProbe, seconds: float = 0.6) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe.poll(50)


def test_watched_paths_are_reported_with_flags_and_others_never_leave_the_kernel() -> None:
    # short paths: prefixes are compared over their first 63 bytes, and pytest's are longer
    root = Path(tempfile.mkdtemp(prefix="gw-", dir="/tmp"))
    watched = root / "secrets"
    watched.mkdir()
    quiet = root / "public.txt"
    quiet.write_text("nothing to see")
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(
        seen.append, watched_paths=(*DEFAULT_WATCHED_PATHS, (f"{watched}/", READ_WRITE))
    )
    try:
        (watched / "token").write_text("s3cr3t")  # O_WRONLY|O_CREAT|O_TRUNC
        (watched / "token").read_text()
        quiet.read_text()
        drain(probe)
    finally:
        probe.close()
        shutil.rmtree(root)
    opens = [e for e in seen if e.type == "open" and e.pid == os.getpid()]
    paths = [(e.path, e.open_flags & os.O_ACCMODE) for e in opens]
    assert (f"{watched}/token", os.O_WRONLY) in paths
    assert (f"{watched}/token", os.O_RDONLY) in paths
    assert all(e.path != str(quiet) for e in opens)
    written = next(e for e in opens if e.open_flags & os.O_ACCMODE == os.O_WRONLY)
    assert written.open_flags & os.O_CREAT and written.open_flags & os.O_TRUNC
    assert written.fd >= 0 and written.res == written.fd  # reported on return, with the fd


def test_write_only_prefixes_and_failed_opens() -> None:
    root = Path(tempfile.mkdtemp(prefix="gw-", dir="/tmp"))
    logs = root / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("line\n")
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(
        seen.append,
        watched_paths=((f"{logs}/", WATCH_WRITE), (f"{root}/secret", READ_WRITE)),
    )
    try:
        (logs / "app.log").read_text()  # a read of a write-only prefix: stays in the kernel
        with open(logs / "app.log", "w"):  # truncation: reported
            pass
        with pytest.raises(FileNotFoundError):
            open(f"{root}/secret-missing").close()  # a failed attempt: reported with -ENOENT
        drain(probe)
    finally:
        probe.close()
        shutil.rmtree(root)
    opens = [e for e in seen if e.type == "open" and e.pid == os.getpid()]
    assert [(e.path, e.open_flags & os.O_ACCMODE) for e in opens if "logs" in e.path] == [
        (f"{logs}/app.log", os.O_WRONLY)
    ]
    failed = [e for e in opens if e.path.endswith("secret-missing")]
    assert len(failed) == 1 and failed[0].fd == -1 and failed[0].res == -errno.ENOENT


def test_shadow_read_inside_a_container(tmp_path: Path) -> None:
    from tests.kernel.containers import run, runc_bundle
    from tests.kernel.test_containers import Collector

    name = f"garrison-file-{os.getpid()}"
    with runc_bundle(tmp_path, name) as bundle, Collector() as collected:
        result = run(
            bundle, "/bin/sh", "-c", "/bin/cat /etc/shadow; /bin/cat /etc/hostname; /bin/sleep 0.3"
        )
    assert "root:*" in result.stdout
    opens = [e for e in collected.events if e.type == "open" and e.container_id == name]
    assert [e.path for e in opens] == ["/etc/shadow"]
    shells = {
        e.pid
        for e in collected.events
        if e.type == "exec" and e.comm == "sh" and e.container_id == name
    }
    assert opens[0].comm == "cat" and opens[0].ppid in shells  # by pid: see test_containers


def test_one_ring_keeps_order_across_programs() -> None:
    """The open of a process that just started is read after its exec: it carries the exe."""
    import subprocess

    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append)
    try:
        for _ in range(20):
            subprocess.run(["/bin/cat", "/etc/shadow"], stdout=subprocess.DEVNULL, check=True)
        drain(probe)
    finally:
        probe.close()
    opens = [
        e
        for e in seen
        if e.type == "open" and e.ppid == os.getpid() and e.path == "/etc/shadow"  # our cats
    ]
    assert len(opens) == 20
    assert all(e.exe == "/bin/cat" and e.args == ["/bin/cat", "/etc/shadow"] for e in opens)


def test_removals_renames_permission_and_time_changes() -> None:
    root = Path(tempfile.mkdtemp(prefix="gw-", dir="/tmp"))
    quiet = Path(tempfile.mkdtemp(prefix="gq-", dir="/tmp"))
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append, watched_paths=((f"{root}/", WATCH_WRITE | WATCH_EXEC_BIT),))
    try:
        history = root / ".ash_history"
        history.write_text("id\n")
        history.rename(root / "moved")  # rename of a watched path
        (root / "moved").unlink()  # removal of a watched path
        (quiet / "other").write_text("x")
        (quiet / "other").unlink()  # not watched: stays in the kernel
        tool = root / "tool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)  # an execute bit under an exec-bit prefix
        (quiet / "plain").write_text("x")
        (quiet / "plain").chmod(0o755)  # not watched for exec bits
        (quiet / "plain").chmod(0o4755)  # setuid: reported anywhere
        os.utime(quiet / "plain", (0, 0))  # explicit times: reported anywhere
        os.utime(quiet / "plain")  # "now": stays in the kernel
        drain(probe)
    finally:
        probe.close()
        shutil.rmtree(root)
        shutil.rmtree(quiet)
    mine = [
        e
        for e in seen
        if e.pid == os.getpid() and e.type in ("unlink", "rename", "chmod", "utimes")
    ]
    got = [(e.type, e.path, e.new_path, e.mode) for e in mine]
    assert got == [
        ("rename", f"{root}/.ash_history", f"{root}/moved", 0),
        ("unlink", f"{root}/moved", "", 0),
        ("chmod", f"{root}/tool", "", 0o755),
        ("chmod", f"{quiet}/plain", "", 0o4755),
        ("utimes", f"{quiet}/plain", "", 0),
    ]
    assert {e.syscall for e in mine} == {"renameat2", "unlinkat", "fchmodat", "utimensat"}
