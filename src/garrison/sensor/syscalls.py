"""Syscalls the sensor watches (x86_64 numbers): the moves of privilege escalation and escape."""

from __future__ import annotations

import platform

WATCHED_SYSCALLS: dict[int, str] = {
    101: "ptrace",
    105: "setuid",
    106: "setgid",
    113: "setreuid",
    114: "setregid",
    117: "setresuid",
    119: "setresgid",
    126: "capset",
    155: "pivot_root",
    161: "chroot",
    165: "mount",
    175: "init_module",
    176: "delete_module",
    246: "kexec_load",
    272: "unshare",
    308: "setns",
    313: "finit_module",
    319: "memfd_create",
    321: "bpf",
}


def supported() -> bool:
    """The numbers above are x86_64's; other architectures number syscalls differently."""
    return platform.machine() in ("x86_64", "AMD64")
