"""Source ``syscall``: Falco's field names over the sensor's ``RuntimeEvent``.

Every field Falco's stable rules use is named here. Those the sensor carries are computed
from the event (process image and ancestors come from the sensor's process tree, container
and pod identity from the runtime's state); the rest are declared ``carried=False``: an
output template prints them as ``<NA>``, and a condition on one is refused with its name.

Event types use Falco's names: ``execve`` (exec), ``clone`` (a new process), ``procexit``,
``openat``, ``connect``, ``dup2`` (a socket onto fd 0-2), and the watched syscalls by name
(``ptrace``, ``unshare``, ``init_module``, ``socket`` for packet sockets, ...).
"""

from __future__ import annotations

import dataclasses
import grp
import ipaddress
import os.path
import pwd
import socket
from collections.abc import Callable, Mapping
from functools import lru_cache

from garrison.events.runtime import RuntimeEvent
from garrison.rules.fields import EvalContext, FieldDef, FieldTable, FieldValueT
from garrison.rules.syscall_values import (
    ADDRESS_FAMILIES,
    PTRACE_REQUESTS,
    capabilities_text,
    clone_flags_text,
    mode_text,
    open_flags_text,
    result_text,
)
from garrison.sensor.syscalls import PRODUCED_EVENT_TYPES

SOURCE = "syscall"
Extract = Callable[[EvalContext, str | None], FieldValueT]
# events whose result the sensor knows (reported on return)
_WITH_RESULT = frozenset({"exec", "open", "connect", "dup_socket", "accept"})
_SOCKET_EVENTS = frozenset({"connect", "dup_socket", "listen", "accept"})
_WITH_PEER = frozenset({"connect", "dup_socket", "accept"})
_L4 = {1: "tcp", 2: "udp", 3: "raw", 5: "tcp", 6: "dccp"}  # SOCK_STREAM, DGRAM, RAW, SEQPACKET
# fields Falco has and garrison's events do not carry (yet): <NA> in outputs, refused in
# conditions
NOT_CARRIED = (
    "evt.dir",
    "evt.arg.target",
    "evt.arg.linkpath",
    "proc.cwd",
    "proc.vpgid",
    "proc.vpgid.name",
    "proc.vpgid.exe",
    "proc.is_vpgid_leader",
    "proc.exe_ino.ctime",
    "proc.exe_ino.mtime",
    "proc.exe_ino.ctime_duration_proc_start",
    "proc.ppid.duration",
    "proc.env",
    "fd.lip",
    "fd.cnet",
    "fd.lnet",
    "fd.connected",
    "fd.name_changed",
    "container.start_ts",
    "container.mounts",
    "container.image.id",
)


def _memo(extract: Extract) -> Extract:
    """Compute an argument-less derived field once per event (many rules ask for it)."""
    slot = object()

    def memoized(ctx: EvalContext, arg: str | None) -> FieldValueT:
        cache = ctx.cache
        if slot in cache:
            value: FieldValueT = cache[slot]
            return value
        value = cache[slot] = extract(ctx, arg)
        return value

    return memoized


def _ev(ctx: EvalContext) -> RuntimeEvent:
    event: RuntimeEvent = ctx.event
    return event


def _text(value: str) -> str | None:
    return value or None


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


# -- evt.* ------------------------------------------------------------------------------
def _evt_res(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return result_text(ev.res) if ev.type in _WITH_RESULT else None


def _evt_rawres(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return ev.res if ev.type in _WITH_RESULT else None


def _is_open(write: bool) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        ev = _ev(ctx)
        if ev.type != "open":
            return None
        access = ev.open_flags & os.O_ACCMODE
        writes = access != os.O_RDONLY or bool(ev.open_flags & (os.O_CREAT | os.O_TRUNC))
        reads = access != os.O_WRONLY
        return _bool_text(writes if write else reads)

    return extract


def _evt_flags(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.type == "open":
        return open_flags_text(ev.open_flags)
    if ev.type == "exec":
        flags = [name for on, name in ((ev.exe_upper_layer, "EXE_UPPER_LAYER"),) if on]
        if ev.exe_from_memfd:
            flags.append("EXE_FROM_MEMFD")
        return "|".join(flags)
    if ev.type == "syscall" and ev.syscall in ("unshare", "setns"):
        index = 0 if ev.syscall == "unshare" else 1  # unshare(flags), setns(fd, nstype)
        return clone_flags_text(ev.syscall_args[index]) if len(ev.syscall_args) > index else None
    return None


def _arg_path(*kinds: str) -> Extract:
    """A path argument of file operations (``evt.arg.name`` of unlinkat, ...)."""
    wanted = frozenset(kinds)

    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        ev = _ev(ctx)
        return (ev.path or None) if ev.type in wanted else None

    return extract


def _new_path(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return (ev.new_path or None) if ev.type == "rename" else None


def _evt_mode(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return mode_text(ev.mode) if ev.type in ("chmod", "open") else None


def _evt_request(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.syscall != "ptrace" or not ev.syscall_args:
        return None
    request = ev.syscall_args[0]
    return PTRACE_REQUESTS.get(request, str(request))


def _evt_domain(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.syscall != "socket" or not ev.syscall_args:
        return None
    return ADDRESS_FAMILIES.get(ev.syscall_args[0], str(ev.syscall_args[0]))


def _evt_args(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.type == "open":
        return f"fd={ev.fd} name={ev.path} flags={open_flags_text(ev.open_flags)}"
    if ev.type == "rename":
        return f"oldpath={ev.path} newpath={ev.new_path}"
    if ev.type in ("unlink", "chmod", "utimes"):
        return (
            f"path={ev.path} mode={mode_text(ev.mode)}" if ev.type == "chmod" else f"path={ev.path}"
        )
    if ev.type == "listen":
        return f"fd={ev.fd} port={ev.local_port}"
    if ev.type in _SOCKET_EVENTS:
        return f"fd={ev.fd} addr={ev.dest_ip}:{ev.dest_port}"
    if ev.type == "exec":
        return f"filename={ev.exe}"
    if ev.type == "syscall":
        return " ".join(f"arg{i}={v}" for i, v in enumerate(ev.syscall_args))
    return None


# -- proc.* -----------------------------------------------------------------------------
def _proc_exe(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return ev.args[0] if ev.args else _text(ev.exe)


def _proc_args(ctx: EvalContext, arg: str | None) -> FieldValueT:
    return " ".join(_ev(ctx).args[1:])


def _proc_cmdline(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return " ".join([ev.comm, *ev.args[1:]])


def _pname(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ancestry = _ev(ctx).ancestry
    return ancestry[0] if ancestry else None


def _pexepath(ctx: EvalContext, arg: str | None) -> FieldValueT:
    exes = _ev(ctx).ancestry_exe
    return _text(exes[0]) if exes else None


def _pexe(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.parent_args:
        return ev.parent_args[0]
    return _text(ev.ancestry_exe[0]) if ev.ancestry_exe else None


def _pcmdline(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if not ev.ancestry:
        return None
    return " ".join([ev.ancestry[0], *ev.parent_args[1:]])


def _ancestors(
    own: Callable[[RuntimeEvent], str], others: Callable[[RuntimeEvent], list[str]]
) -> Extract:
    """``proc.aname[N]`` (0 = the process, 1 = its parent, ...) or, without N, every ancestor."""

    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        ev = _ev(ctx)
        values = others(ev)
        if arg is None:
            return [v for v in values if v] or None
        try:
            index = int(arg)
        except ValueError:
            return None
        if index == 0:
            return [own(ev)] if own(ev) else None
        if 0 < index <= len(values) and values[index - 1]:
            return [values[index - 1]]
        return None

    return extract


def _duration(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if not ev.process_start:
        return None
    return max(0, int((ev.time - ev.process_start) * 1e9))


# -- user.*, group.* --------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _user_name(uid: int) -> str | None:
    if uid < 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


@lru_cache(maxsize=4096)
def _group_name(gid: int) -> str | None:
    if gid < 0:
        return None
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


# -- fd.* -------------------------------------------------------------------------------
def _is_socket(ev: RuntimeEvent) -> bool:
    """An IPv4/IPv6 socket event (a listening socket has no peer, only its port)."""
    return ev.type in _SOCKET_EVENTS and (bool(ev.dest_ip) or ev.type == "listen")


def _is_ipv6(ev: RuntimeEvent) -> bool:
    return ":" in ev.dest_ip


def _fd_typechar(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.type == "open":
        return "f"
    if _is_socket(ev):
        return "6" if _is_ipv6(ev) else "4"
    return None


def _fd_type(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.type == "open":
        return "file"
    if _is_socket(ev):
        return "ipv6" if _is_ipv6(ev) else "ipv4"
    return None


def _fd_num(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return ev.fd if ev.type == "open" or ev.type in _SOCKET_EVENTS else None


def normal_path(path: str) -> str:
    """``os.path.normpath``, without its work for a path that is already normal (most are)."""
    if path[:1] == "/" and path[-1:] != "/" and "//" not in path and "/." not in path:
        return path
    return os.path.normpath(path)


def split_path(path: str) -> tuple[str, str]:
    """(``os.path.dirname``, ``os.path.basename``) of the normal form of ``path``."""
    clean = normal_path(path)
    if clean[:1] != "/" or clean[:2] == "//":
        return os.path.dirname(clean), os.path.basename(clean)
    cut = clean.rfind("/")
    return clean[:cut] or "/", clean[cut + 1 :]


def _fd_name(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.type == "open":
        return normal_path(ev.path) if ev.path else None
    if _is_socket(ev):
        return f"{ev.dest_ip}:{ev.dest_port}"
    return None


def _fd_nameraw(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return _text(ev.path) if ev.type == "open" else None


def _fd_directory(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.type != "open" or not ev.path:
        return None
    return split_path(ev.path)[0]


def _fd_filename(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.type != "open" or not ev.path:
        return None
    return split_path(ev.path)[1]


def _server_ip(ctx: EvalContext, arg: str | None) -> FieldValueT:
    """The server's address: the peer of an outbound connection (a listener's own address
    is not carried)."""
    ev = _ev(ctx)
    return ev.dest_ip if ev.type in ("connect", "dup_socket") and ev.dest_ip else None


def _server_port(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    if ev.type in ("listen", "accept"):
        return ev.local_port
    return ev.dest_port if _is_socket(ev) else None


def _remote_ip(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return ev.dest_ip if ev.type in _WITH_PEER and ev.dest_ip else None


def _remote_port(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return ev.dest_port if ev.type in _WITH_PEER and ev.dest_ip else None


def _client(attr: str) -> Extract:
    """``fd.cip`` / ``fd.cport``: the client of an accepted connection."""

    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        ev = _ev(ctx)
        if ev.type != "accept" or not ev.dest_ip:
            return None
        value: str | int = getattr(ev, attr)
        return value

    return extract


def _local_port(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return ev.local_port if ev.type in ("listen", "accept") else None


def _l4proto(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return _L4.get(ev.sock_type) if _is_socket(ev) else None


def _is_server(ctx: EvalContext, arg: str | None) -> FieldValueT:
    """``false`` for a socket this host connected out; ``true`` for one it accepted."""
    ev = _ev(ctx)
    if ev.type in ("listen", "accept"):
        return "true"
    return _bool_text(not ev.outbound) if _is_socket(ev) else None


def _sip_name(names: Mapping[str, str]) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        ev = _ev(ctx)
        return names.get(ev.dest_ip) if _is_socket(ev) else None

    return extract


# -- container.*, k8s.* -----------------------------------------------------------------
def _in_container(ev: RuntimeEvent) -> bool:
    return ev.container_id != "host"


def repository(image: str) -> str:
    """``registry/name`` without ``:tag`` or ``@digest``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _image_tag(ctx: EvalContext, arg: str | None) -> FieldValueT:
    image = _ev(ctx).image.split("@", 1)[0]
    colon = image.rfind(":")
    return image[colon + 1 :] if colon > image.rfind("/") else None


def _privileged(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ev = _ev(ctx)
    return _bool_text(ev.privileged) if _in_container(ev) else None


def _pod_label(ctx: EvalContext, arg: str | None) -> FieldValueT:
    labels = _ev(ctx).pod_labels
    return labels.get(arg) if arg is not None else None


def _pod_labels(ctx: EvalContext, arg: str | None) -> FieldValueT:
    labels = _ev(ctx).pod_labels
    return [f"{k}:{v}" for k, v in labels.items()] or None


def _attr(getter: Callable[[RuntimeEvent], object]) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        value = getter(ctx.event)
        if value is None or value == "":
            return None
        return value if isinstance(value, (str, int)) else str(value)

    return extract


def _field(name: str, extract: Extract, **options: object) -> FieldDef:
    return FieldDef(name, extract, **options)  # type: ignore[arg-type]


def _uncarried(ctx: EvalContext, arg: str | None) -> FieldValueT:
    return None


_INLINE = {
    "evt.type": "(ev.syscall or None)",
    "proc.pname": "(ev.ancestry[0] if ev.ancestry else None)",
    "proc.tty": "ev.tty",
    "proc.is_exe_upper_layer": '("true" if ev.exe_upper_layer else "false")',
    "proc.is_exe_from_memfd": '("true" if ev.exe_from_memfd else "false")',
    "user.uid": "(ev.uid if ev.uid >= 0 else None)",
    "fd.num": '(ev.fd if ev.type in ("open", "connect", "dup_socket") else None)',
    "proc.name": "(ev.comm or None)",
    "proc.exepath": "(ev.exe or None)",
    "container.id": "ev.container_id",
    "k8s.ns.name": "(ev.namespace or None)",
    "k8s.pod.name": "(ev.pod or None)",
}


def build_table(hostname: str, known_names: Mapping[str, str]) -> FieldTable:
    number = {"type": "number"}
    ip = {"type": "ip"}
    defs = [
        # evt
        _field("evt.type", _attr(lambda e: e.syscall)),
        _field("evt.num", _attr(lambda e: e.seq), **number),
        _field("evt.time", _attr(lambda e: int(e.time * 1e9)), **number),
        _field("evt.rawtime", _attr(lambda e: int(e.time * 1e9)), **number),
        _field("evt.hostname", lambda c, a: hostname or None),
        _field("evt.res", _evt_res),
        _field("evt.rawres", _evt_rawres, **number),
        _field("evt.failed", _attr(lambda e: _bool_text(e.res < 0))),
        _field("evt.is_open_read", _memo(_is_open(False))),
        _field("evt.is_open_write", _memo(_is_open(True))),
        _field("evt.arg.flags", _memo(_evt_flags)),
        _field("evt.arg.request", _evt_request),
        _field("evt.arg.domain", _evt_domain),
        _field("evt.arg.name", _arg_path("unlink")),
        _field("evt.arg.path", _arg_path("unlink", "chmod", "utimes")),
        _field("evt.arg.filename", _arg_path("chmod", "utimes")),
        _field("evt.arg.oldpath", _arg_path("rename")),
        _field("evt.arg.newpath", _new_path),
        _field("evt.arg.mode", _evt_mode),
        _field("evt.args", _evt_args),
        # proc, thread
        _field("proc.name", _attr(lambda e: e.comm)),
        _field("proc.exe", _proc_exe),
        _field("proc.exepath", _attr(lambda e: e.exe)),
        _field("proc.args", _memo(_proc_args)),
        _field("proc.cmdline", _memo(_proc_cmdline)),
        _field("proc.pid", _attr(lambda e: e.pid), **number),
        _field("proc.ppid", _attr(lambda e: e.ppid), **number),
        _field("proc.pname", _pname),
        _field("proc.pexe", _pexe),
        _field("proc.pexepath", _pexepath),
        _field("proc.pcmdline", _pcmdline),
        _field(
            "proc.aname",
            _ancestors(lambda e: e.comm, lambda e: e.ancestry),
            is_list=True,
            arg="optional",
            any_element=True,
        ),
        _field(
            "proc.aexepath",
            _ancestors(lambda e: e.exe, lambda e: e.ancestry_exe),
            is_list=True,
            arg="optional",
            any_element=True,
        ),
        _field("proc.tty", _attr(lambda e: e.tty), **number),
        _field("proc.sid", _attr(lambda e: e.sid or None), **number),
        _field("proc.sname", _attr(lambda e: e.session_leader)),
        _field("proc.duration", _duration, **number),
        _field("proc.exe_ino", _attr(lambda e: e.exe_ino), **number),
        _field("proc.is_exe_upper_layer", _attr(lambda e: _bool_text(e.exe_upper_layer))),
        _field("proc.is_exe_from_memfd", _attr(lambda e: _bool_text(e.exe_from_memfd))),
        _field("thread.tid", _attr(lambda e: e.tid), **number),
        _field("thread.cap_effective", _attr(lambda e: capabilities_text(e.cap_effective))),
        # user, group
        _field("user.uid", _attr(lambda e: e.uid if e.uid >= 0 else None), **number),
        _field("user.name", lambda c, a: _user_name(_ev(c).uid)),
        _field("user.loginuid", _attr(lambda e: e.loginuid), **number),
        _field("user.loginname", lambda c, a: _user_name(_ev(c).loginuid)),
        _field("group.gid", _attr(lambda e: e.gid if e.gid >= 0 else None), **number),
        _field("group.name", lambda c, a: _group_name(_ev(c).gid)),
        # fd
        _field("fd.num", _fd_num, **number),
        _field("fd.typechar", _fd_typechar),
        _field("fd.type", _fd_type),
        _field("fd.name", _memo(_fd_name)),
        _field("fd.nameraw", _fd_nameraw),
        _field("fd.directory", _memo(_fd_directory)),
        _field("fd.filename", _memo(_fd_filename)),
        _field("fd.l4proto", _l4proto),
        _field("fd.is_server", _is_server),
        _field("fd.sip.name", _sip_name(known_names)),
        *(_field(n, _server_ip, **ip) for n in ("fd.sip", "fd.dip", "fd.snet")),
        *(_field(n, _remote_ip, **ip) for n in ("fd.rip", "fd.ip", "fd.net", "fd.rnet")),
        _field("fd.cip", _client("dest_ip"), **ip),
        _field("fd.cport", _client("dest_port"), **number),
        _field("fd.lport", _local_port, **number),
        *(_field(n, _server_port, **number) for n in ("fd.sport", "fd.dport")),
        *(_field(n, _remote_port, **number) for n in ("fd.rport", "fd.port")),
        # container, k8s
        _field("container.id", _attr(lambda e: e.container_id)),
        _field("container.name", _attr(lambda e: e.container_name)),
        _field("container.image", _attr(lambda e: e.image)),
        _field("container.image.repository", _attr(lambda e: repository(e.image))),
        _field("container.image.tag", _image_tag),
        _field("container.privileged", _privileged),
        _field("k8s.ns.name", _attr(lambda e: e.namespace)),
        _field("k8s.pod.name", _attr(lambda e: e.pod)),
        _field("k8s.pod.label", _pod_label, arg="required"),
        _field("k8s.pod.labels", _pod_labels, is_list=True),
        *(_field(n, _uncarried, carried=False, arg="optional") for n in NOT_CARRIED),
        _field("fd.types", _uncarried, carried=False, is_list=True, arg="optional"),
    ]
    defs = [dataclasses.replace(d, inline=_INLINE.get(d.name)) for d in defs]
    return FieldTable(
        source=SOURCE,
        fields={d.name: d for d in defs},
        index_fields=(("evt.type",),),
        index_key=_index_key,
        index_domains={"evt.type": PRODUCED_EVENT_TYPES},
        volatile=frozenset({"evt.num", "evt.time", "evt.rawtime"}),
    )


def _index_key(event: RuntimeEvent) -> tuple[str, ...]:
    return (event.syscall,)


def kubernetes_api_names(env: Mapping[str, str]) -> dict[str, str]:
    """The API server's service address, as Falco's ``fd.sip.name`` would resolve it."""
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return {}
    return {host: "kubernetes.default.svc.cluster.local"}


class SyscallSource:
    """The ``syscall`` event source: evaluated on ``RuntimeEvent``."""

    def __init__(self, hostname: str = "", known_names: Mapping[str, str] | None = None) -> None:
        names = dict(known_names) if known_names is not None else kubernetes_api_names(os.environ)
        self._table = build_table(hostname or socket.gethostname(), names)

    @property
    def name(self) -> str:
        return SOURCE

    @property
    def table(self) -> FieldTable:
        return self._table
