"""How Falco spells kernel values: syscall results, open flags, capabilities, ptrace requests."""

from __future__ import annotations

import errno
import functools
import os

# Linux capability numbers (include/uapi/linux/capability.h)
CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_SYS_ADMIN = 1 << CAPABILITIES.index("CAP_SYS_ADMIN")

_OPEN_FLAGS = (
    (os.O_CREAT, "O_CREAT"),
    (os.O_EXCL, "O_EXCL"),
    (os.O_NOCTTY, "O_NOCTTY"),
    (os.O_TRUNC, "O_TRUNC"),
    (os.O_APPEND, "O_APPEND"),
    (os.O_NONBLOCK, "O_NONBLOCK"),
    (os.O_DSYNC, "O_DSYNC"),
    (getattr(os, "O_DIRECT", 0o40000), "O_DIRECT"),
    (getattr(os, "O_LARGEFILE", 0o100000), "O_LARGEFILE"),
    (os.O_DIRECTORY, "O_DIRECTORY"),
    (os.O_NOFOLLOW, "O_NOFOLLOW"),
    (os.O_CLOEXEC, "O_CLOEXEC"),
)
PTRACE_REQUESTS = {
    0: "PTRACE_TRACEME",
    1: "PTRACE_PEEKTEXT",
    2: "PTRACE_PEEKDATA",
    3: "PTRACE_PEEKUSR",
    4: "PTRACE_POKETEXT",
    5: "PTRACE_POKEDATA",
    6: "PTRACE_POKEUSR",
    7: "PTRACE_CONT",
    8: "PTRACE_KILL",
    9: "PTRACE_SINGLESTEP",
    12: "PTRACE_GETREGS",
    13: "PTRACE_SETREGS",
    16: "PTRACE_ATTACH",
    17: "PTRACE_DETACH",
    24: "PTRACE_SYSCALL",
    0x4200: "PTRACE_SETOPTIONS",
    0x4201: "PTRACE_GETEVENTMSG",
    0x4206: "PTRACE_SEIZE",
    0x4207: "PTRACE_INTERRUPT",
    0x4208: "PTRACE_LISTEN",
}
ADDRESS_FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
CLONE_NEW = (
    (0x00020000, "CLONE_NEWNS"),
    (0x02000000, "CLONE_NEWCGROUP"),
    (0x04000000, "CLONE_NEWUTS"),
    (0x08000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x00000080, "CLONE_NEWTIME"),
)


@functools.lru_cache(maxsize=1024)
def capabilities_text(mask: int) -> str:
    """``CAP_CHOWN CAP_SYS_ADMIN ...`` as Falco prints ``thread.cap_effective``."""
    return " ".join(name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1)


@functools.lru_cache(maxsize=1024)
def open_flags_text(flags: int) -> str:
    """``O_WRONLY|O_CREAT|O_TRUNC``: the access mode, then every other flag set."""
    mode = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_RDWR")[flags & os.O_ACCMODE]
    return "|".join([mode, *(name for bit, name in _OPEN_FLAGS if flags & bit)])


def result_text(res: int) -> str:
    """``SUCCESS`` or the errno name of a negative result (``ENOENT``)."""
    if res >= 0:
        return "SUCCESS"
    return errno.errorcode.get(-res, f"E{-res}")


def clone_flags_text(flags: int) -> str:
    return "|".join(name for bit, name in CLONE_NEW if flags & bit)


_MODE_BITS = (
    (0o4000, "S_ISUID"),
    (0o2000, "S_ISGID"),
    (0o1000, "S_ISVTX"),
    (0o400, "S_IRUSR"),
    (0o200, "S_IWUSR"),
    (0o100, "S_IXUSR"),
    (0o040, "S_IRGRP"),
    (0o020, "S_IWGRP"),
    (0o010, "S_IXGRP"),
    (0o004, "S_IROTH"),
    (0o002, "S_IWOTH"),
    (0o001, "S_IXOTH"),
)


def mode_text(mode: int) -> str:
    """``S_ISUID|S_IRUSR|...``: the permission bits set, as Falco prints ``evt.arg.mode``."""
    return "|".join(name for bit, name in _MODE_BITS if mode & bit)
