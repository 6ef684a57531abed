"""Syscalls the sensor watches (x86_64 numbers): the moves of privilege escalation and escape."""

from __future__ import annotations

import platform

WATCHED_SYSCALLS: dict[int, str] = {
    41: "socket",  # only AF_PACKET sockets leave the kernel
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


# Falco's event type (evt.type) of each kind of sensor event besides the watched syscalls
EVENT_SYSCALLS = {
    "exec": "execve",
    "fork": "clone",
    "exit": "procexit",
    "connect": "connect",
    "dup_socket": "dup2",
    "open": "openat",
    "unlink": "unlinkat",
    "rename": "renameat2",
    "chmod": "fchmodat",
    "utimes": "utimensat",
    "listen": "listen",
    "accept": "accept4",
}
PRODUCED_EVENT_TYPES = frozenset({*EVENT_SYSCALLS.values(), *WATCHED_SYSCALLS.values()})


def supported() -> bool:
    """The numbers above are x86_64's; other architectures number syscalls differently."""
    return platform.machine() in ("x86_64", "AMD64")
