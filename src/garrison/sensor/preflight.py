"""What the sensor needs from the machine, checked up front: one clear line per problem."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

TRACEFS = Path("/sys/kernel/tracing")
BTF = Path("/sys/kernel/btf/vmlinux")
CAP_BPF = 39
CAP_PERFMON = 38
CAP_SYS_ADMIN = 21


@dataclass(frozen=True)
class Problem:
    what: str

    def __str__(self) -> str:
        return self.what


def _effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def ensure_tracefs() -> Problem | None:
    """Mount tracefs at /sys/kernel/tracing when it is not (it is not on a fresh machine here)."""
    if (TRACEFS / "events").is_dir():
        return None
    if os.geteuid() != 0:
        return Problem(f"tracefs is not mounted at {TRACEFS} and mounting it needs root")
    result = subprocess.run(
        ["mount", "-t", "tracefs", "tracefs", str(TRACEFS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not (TRACEFS / "events").is_dir():
        return Problem(
            f"tracefs is not mounted at {TRACEFS} and mounting failed: {result.stderr.strip()}"
        )
    return None


def check(objects: list[Path]) -> list[Problem]:
    problems: list[Problem] = []
    caps = _effective_caps()
    has_bpf = bool(caps & (1 << CAP_BPF)) and bool(caps & (1 << CAP_PERFMON))
    if not (has_bpf or caps & (1 << CAP_SYS_ADMIN)):
        problems.append(Problem("missing capability: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)"))
    if not BTF.exists():
        problems.append(Problem(f"no kernel BTF at {BTF}: the kernel needs CONFIG_DEBUG_INFO_BTF"))
    release = os.uname().release.split(".")
    try:
        if (int(release[0]), int(release[1])) < (5, 8):
            problems.append(
                Problem(f"kernel {os.uname().release} is too old: ring buffers need 5.8")
            )
    except (ValueError, IndexError):
        pass
    for path in objects:
        if not path.exists():
            problems.append(Problem(f"BPF object {path} is missing: run `make kernel`"))
    if not problems:
        mounted = ensure_tracefs()
        if mounted is not None:
            problems.append(mounted)
    return problems
