"""Source ``k8s_audit``: fields of Falco's k8saudit (``ka.*``) and json (``jevt.*``) plugins.

Values follow the plugin: strings as they are, other JSON values as their JSON text (so
``true``, ``201``), lists as lists of such strings. A missing key means "not available".
Evaluated on ``garrison.events.AuditEvent``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from garrison.events.audit import AuditEvent
from garrison.rules.fields import EvalContext, FieldDef, FieldTable, FieldValueT
from garrison.rules.k8s_audit_ext import extension_fields
from garrison.rules.k8s_audit_values import (
    MISSING,
    dig,
    image_repository,
    json_text,
    make_field,
    parse_timestamp_ns,
)

SOURCE = "k8s_audit"


def _req(ctx: EvalContext) -> Any:
    event: AuditEvent = ctx.event
    return event.request_object


def _scalar(
    getter: Callable[[AuditEvent], Any],
) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        value = getter(ctx.event)
        if value is None or value is MISSING or value == "":
            return None
        return json_text(value)

    return extract


def _req_scalar(*keys: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        value = dig(_req(ctx), *keys)
        if value is MISSING or value is None:
            return None
        return json_text(value)

    return extract


def _req_list(*keys: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        value = dig(_req(ctx), *keys)
        if not isinstance(value, list):
            return None
        return [json_text(v) for v in value if v is not None]

    return extract


def _index(arg: str | None) -> int | None:
    if arg is None:
        return None
    try:
        return int(arg)
    except ValueError:
        return None


def _containers(ctx: EvalContext, kind: str, arg: str | None) -> list[Any] | None:
    items = dig(_req(ctx), "spec", kind)
    if not isinstance(items, list):
        return None
    idx = _index(arg)
    if idx is not None:
        if idx < 0 or idx >= len(items):
            return None
        return [items[idx]]
    return items


def _per_container(kind: str, *keys: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    """One value per container of ``kind`` that sets ``keys`` (containers without it skipped)."""

    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        items = _containers(ctx, kind, arg)
        if items is None:
            return None
        out = []
        for item in items:
            value = dig(item, *keys)
            if value is not MISSING and value is not None:
                out.append(json_text(value))
        return out

    return extract


def _images(kind: str, repository: bool) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        items = _containers(ctx, kind, arg)
        if items is None:
            return None
        out = []
        for item in items:
            image = dig(item, "image")
            if isinstance(image, str):
                out.append(image_repository(image) if repository else image)
        return out

    return extract


def _first_image(repository: bool) -> Callable[[EvalContext, str | None], FieldValueT]:
    images = _images("containers", repository)

    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        values = images(ctx, None)
        if not isinstance(values, list) or not values:
            return None
        return values[0]

    return extract


def _any_privileged(ctx: EvalContext, arg: str | None) -> FieldValueT:
    items = _containers(ctx, "containers", None)
    if items is None:
        return None
    return (
        "true" if any(dig(c, "securityContext", "privileged") is True for c in items) else "false"
    )


def _host_ports(ctx: EvalContext, arg: str | None) -> FieldValueT:
    items = _containers(ctx, "containers", arg)
    if items is None:
        return None
    out = []
    for item in items:
        ports = dig(item, "ports")
        if not isinstance(ports, list):
            continue
        for port in ports:
            value = dig(port, "hostPort")
            if value is MISSING:
                value = dig(port, "containerPort")
            if value is not MISSING and value is not None:
                out.append(json_text(value))
    return out


def _effective(key: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        pod_value = dig(_req(ctx), "spec", "securityContext", key)
        default = "0" if pod_value is MISSING or pod_value is None else json_text(pod_value)
        items = _containers(ctx, "containers", arg)
        if items is None:
            return None
        out = []
        for item in items:
            value = dig(item, "securityContext", key)
            out.append(default if value is MISSING or value is None else json_text(value))
        return out

    return extract


def _role_rules(key: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        rules = dig(_req(ctx), "rules")
        if not isinstance(rules, list):
            return None
        idx = _index(arg)
        if idx is not None:
            if idx < 0 or idx >= len(rules):
                return None
            rules = [rules[idx]]
        out: list[str] = []
        for rule in rules:
            values = dig(rule, key)
            if isinstance(values, list):
                out.extend(json_text(v) for v in values if v is not None)
        return out

    return extract


def _volume_paths(ctx: EvalContext, arg: str | None) -> list[str] | None:
    volumes = dig(_req(ctx), "spec", "volumes")
    if not isinstance(volumes, list):
        return None
    idx = _index(arg)
    if idx is not None:
        if idx < 0 or idx >= len(volumes):
            return None
        volumes = [volumes[idx]]
    out = []
    for volume in volumes:
        path = dig(volume, "hostPath", "path")
        if isinstance(path, str):
            out.append(path)
    return out


def _volume_hostpath_legacy(ctx: EvalContext, arg: str | None) -> FieldValueT:
    """Deprecated ``ka.req.volume.hostpath[/path*]``: "true" when a hostPath matches."""
    if not arg:
        return None
    paths = _volume_paths(ctx, None)
    if paths is None:
        return None
    prefix = arg.endswith("*")
    stem = arg[:-1]
    hit = any((prefix and p.startswith(stem)) or p == arg for p in paths)
    return "true" if hit else "false"


def _volume_types(ctx: EvalContext, arg: str | None) -> FieldValueT:
    volumes = dig(_req(ctx), "spec", "volumes")
    if not isinstance(volumes, list):
        return None
    return [k for v in volumes if isinstance(v, dict) for k in v if k != "name"]


def _flex_drivers(ctx: EvalContext, arg: str | None) -> FieldValueT:
    volumes = dig(_req(ctx), "spec", "volumes")
    if not isinstance(volumes, list):
        return None
    out = []
    for volume in volumes:
        driver = dig(volume, "flexVolume", "driver")
        if isinstance(driver, str):
            out.append(driver)
    return out


def _uri_param(ctx: EvalContext, arg: str | None) -> FieldValueT:
    if not arg:
        return None
    key = ("uri.param",)
    query = ctx.cache.get(key)
    if query is None:
        query = parse_qs(urlsplit(ctx.event.request_uri).query, keep_blank_values=True)
        ctx.cache[key] = query
    values = query.get(arg)
    return values[0] if values else None


def _service_ports(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ports = dig(_req(ctx), "spec", "ports")
    if not isinstance(ports, list):
        return None
    idx = _index(arg)
    if idx is not None:
        if idx < 0 or idx >= len(ports):
            return None
        ports = [ports[idx]]
    return [json_text(p) for p in ports]


# -- jevt.* (the json plugin) ---------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _struct_fields(cls: type) -> dict[str, str]:
    """JSON name → attribute name of a msgspec struct type."""
    return {f.encode_name: f.name for f in msgspec.structs.fields(cls)}


@functools.lru_cache(maxsize=1024)
def _pointer_tokens(pointer: str) -> tuple[str, ...] | None:
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        return None
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def _json_pointer(ctx: EvalContext, arg: str | None) -> FieldValueT:
    """RFC 6901 pointer into the whole event: ``jevt.value[/requestObject/spec/tls]``.

    Walks the typed event directly (struct attributes by their JSON names), so the common
    ``/stage`` costs an attribute read, not a conversion of the whole event.
    """
    if arg is None:
        return None
    tokens = _pointer_tokens(arg)
    if tokens is None:
        return None
    value: Any = ctx.event
    for token in tokens:
        if isinstance(value, msgspec.Struct):
            attr = _struct_fields(type(value)).get(token)
            if attr is None:
                return None
            value = getattr(value, attr)
            if value is None:
                return None
        elif isinstance(value, dict):
            if token not in value:
                return None
            value = value[token]
        elif isinstance(value, list):
            if not token.isdigit() or int(token) >= len(value):
                return None
            value = value[int(token)]
        else:
            return None
    if value is None:
        return None
    if isinstance(value, msgspec.Struct):
        value = msgspec.to_builtins(value)
    return json_text(value)


RAWTIME_KEY = "jevt.rawtime"


def _raw_time(ctx: EvalContext, arg: str | None) -> FieldValueT:
    cached: int | None = ctx.cache.get(RAWTIME_KEY)
    if cached is not None:
        return cached
    event: AuditEvent = ctx.event
    stamp = event.stage_timestamp or event.request_received_timestamp or event.timestamp
    value = parse_timestamp_ns(stamp) if stamp else 0
    ctx.cache[RAWTIME_KEY] = value
    return value


def _jevt_obj(ctx: EvalContext, arg: str | None) -> FieldValueT:
    return msgspec.json.encode(ctx.event).decode()


def _user(ctx: EvalContext, arg: str | None) -> FieldValueT:
    name: str = ctx.event.user.username
    return name or None


def _impuser(ctx: EvalContext, arg: str | None) -> FieldValueT:
    user = ctx.event.impersonated_user
    return user.username if user is not None and user.username else None


def _groups(ctx: EvalContext, arg: str | None) -> FieldValueT:
    groups: list[str] = ctx.event.user.groups
    return list(groups) if groups else None


def _annotation(key: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        annotations: dict[str, str] = ctx.event.annotations
        return annotations.get(key)

    return extract


def _objref(attr: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        ref = ctx.event.object_ref
        if ref is None:
            return None
        value: str = getattr(ref, attr)
        return value or None

    return extract


def _response_code(ctx: EvalContext, arg: str | None) -> FieldValueT:
    status = ctx.event.response_status
    if status is None or not status.code:
        return None
    return str(status.code)


def _response_reason(ctx: EvalContext, arg: str | None) -> FieldValueT:
    status = ctx.event.response_status
    return status.reason if status is not None and status.reason else None


def _resp_name(ctx: EvalContext, arg: str | None) -> FieldValueT:
    value = dig(ctx.event.response_object, "metadata", "name")
    return None if value is MISSING or value is None else json_text(value)


def _sourceips(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ips: list[str] = ctx.event.source_ips
    return list(ips) if ips else None


def _useragent(ctx: EvalContext, arg: str | None) -> FieldValueT:
    agent: str = ctx.event.user_agent
    return agent or None


def _cluster_name(ctx: EvalContext, arg: str | None) -> FieldValueT:
    name = ctx.cache.get("cluster")
    return name if isinstance(name, str) and name else None


_SECURITY_CONTEXT = {
    "privileged": "privileged",
    "allow_privilege_escalation": "allowPrivilegeEscalation",
    "read_only_fs": "readOnlyRootFilesystem",
    "run_as_user": "runAsUser",
    "run_as_group": "runAsGroup",
    "proc_mount": "procMount",
}


def _container_fields() -> list[FieldDef]:
    out = []
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        base = f"ka.req.pod.{kind}"
        extractors = {
            "image": _images(kind, False),
            "image.repository": _images(kind, True),
            "add_capabilities": _flat_caps(kind),
            **{
                name: _per_container(kind, "securityContext", key)
                for name, key in _SECURITY_CONTEXT.items()
            },
        }
        out += [
            make_field(f"{base}.{name}", extract, is_list=True, arg="optional")
            for name, extract in extractors.items()
        ]
    return out


def _flat_caps(kind: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        items = _containers(ctx, kind, arg)
        if items is None:
            return None
        out: list[str] = []
        for item in items:
            caps = dig(item, "securityContext", "capabilities", "add")
            if isinstance(caps, list):
                out.extend(json_text(c) for c in caps)
        return out

    return extract


def _index_key(event: AuditEvent) -> tuple[str, ...]:
    ref = event.object_ref
    return (event.verb, ref.resource if ref is not None else "", event.stage)


_REF = "({t} := ev.object_ref) is not None"
_INLINE = {
    "ka.auditid": "(ev.audit_id or None)",
    "ka.stage": "(ev.stage or None)",
    "ka.verb": "(ev.verb or None)",
    "ka.uri": "(ev.request_uri or None)",
    "ka.user.name": "(ev.user.username or None)",
    "ka.useragent": "(ev.user_agent or None)",
    "ka.auth.decision": 'ev.annotations.get("authorization.k8s.io/decision")',
    "ka.auth.reason": 'ev.annotations.get("authorization.k8s.io/reason")',
    "ka.impuser.name": (
        "(({t}.username or None) if ({t} := ev.impersonated_user) is not None else None)"
    ),
    "ka.target.name": f"(({{t}}.name or None) if {_REF} else None)",
    "ka.target.namespace": f"(({{t}}.namespace or None) if {_REF} else None)",
    "ka.target.resource": f"(({{t}}.resource or None) if {_REF} else None)",
    "ka.target.subresource": f"(({{t}}.subresource or None) if {_REF} else None)",
    "ka.response.code": (
        "(str({t}.code) if ({t} := ev.response_status) is not None and {t}.code else None)"
    ),
}
_INLINE_ARGS = {"jevt.value": {"/stage": "ev.stage", "/verb": "ev.verb"}}


def build_table() -> FieldTable:
    defs = [
        make_field("ka.auditid", _scalar(lambda e: e.audit_id)),
        make_field("ka.stage", _scalar(lambda e: e.stage)),
        make_field("ka.auth.decision", _annotation("authorization.k8s.io/decision")),
        make_field("ka.auth.reason", _annotation("authorization.k8s.io/reason")),
        make_field("ka.user.name", _user),
        make_field("ka.user.groups", _groups, is_list=True),
        make_field("ka.impuser.name", _impuser),
        make_field("ka.verb", _scalar(lambda e: e.verb)),
        make_field("ka.uri", _scalar(lambda e: e.request_uri)),
        make_field("ka.uri.param", _uri_param, arg="required"),
        make_field("ka.target.name", _objref("name")),
        make_field("ka.target.namespace", _objref("namespace")),
        make_field("ka.target.resource", _objref("resource")),
        make_field("ka.target.subresource", _objref("subresource")),
        make_field("ka.target.apigroup", _objref("api_group")),
        make_field("ka.req.binding.subjects", _req_list("subjects"), is_list=True),
        make_field("ka.req.binding.role", _req_scalar("roleRef", "name")),
        make_field("ka.req.binding.subject.has_name", lambda c, a: "true", arg="required"),
        make_field("ka.req.configmap.name", _objref("name")),
        make_field("ka.req.configmap.obj", _req_scalar("data")),
        make_field("ka.req.container.image", _first_image(False)),
        make_field("ka.req.container.image.repository", _first_image(True)),
        make_field("ka.req.container.privileged", _any_privileged),
        make_field("ka.req.pod.host_ipc", _req_scalar("spec", "hostIPC")),
        make_field("ka.req.pod.host_network", _req_scalar("spec", "hostNetwork")),
        make_field("ka.req.container.host_network", _req_scalar("spec", "hostNetwork")),
        make_field("ka.req.pod.host_pid", _req_scalar("spec", "hostPID")),
        make_field("ka.req.pod.containers.host_port", _host_ports, is_list=True, arg="optional"),
        make_field(
            "ka.req.pod.containers.eff_run_as_user",
            _effective("runAsUser"),
            is_list=True,
            arg="optional",
        ),
        make_field(
            "ka.req.pod.containers.eff_run_as_group",
            _effective("runAsGroup"),
            is_list=True,
            arg="optional",
        ),
        make_field("ka.req.pod.run_as_user", _req_scalar("spec", "securityContext", "runAsUser")),
        make_field("ka.req.pod.run_as_group", _req_scalar("spec", "securityContext", "runAsGroup")),
        make_field("ka.req.pod.fs_group", _req_scalar("spec", "securityContext", "fsGroup")),
        make_field(
            "ka.req.pod.supplemental_groups",
            _req_list("spec", "securityContext", "supplementalGroups"),
            is_list=True,
        ),
        make_field("ka.req.role.rules", _req_list("rules"), is_list=True),
        make_field(
            "ka.req.role.rules.apiGroups", _role_rules("apiGroups"), is_list=True, arg="optional"
        ),
        make_field(
            "ka.req.role.rules.nonResourceURLs",
            _role_rules("nonResourceURLs"),
            is_list=True,
            arg="optional",
        ),
        make_field("ka.req.role.rules.verbs", _role_rules("verbs"), is_list=True, arg="optional"),
        make_field(
            "ka.req.role.rules.resources", _role_rules("resources"), is_list=True, arg="optional"
        ),
        make_field("ka.req.service.type", _req_scalar("spec", "type")),
        make_field("ka.req.service.ports", _service_ports, is_list=True, arg="optional"),
        make_field("ka.req.volume.hostpath", _volume_hostpath_legacy, arg="required"),
        make_field("ka.req.pod.volumes.hostpath", _volume_paths, is_list=True, arg="optional"),
        make_field(
            "ka.req.pod.volumes.flexvolume_driver", _flex_drivers, is_list=True, arg="optional"
        ),
        make_field("ka.req.pod.volumes.volume_type", _volume_types, is_list=True, arg="optional"),
        make_field("ka.resp.name", _resp_name),
        make_field("ka.response.code", _response_code),
        make_field("ka.response.reason", _response_reason),
        make_field("ka.useragent", _useragent),
        make_field("ka.sourceips", _sourceips, is_list=True),
        make_field("ka.cluster.name", _cluster_name),
        make_field("jevt.value", _json_pointer, arg="required"),
        make_field("jevt.obj", _jevt_obj),
        make_field("jevt.rawtime", _raw_time, type="number"),
        make_field("jevt.time", lambda c, a: c.event.stage_timestamp or None),
        *_container_fields(),
        *extension_fields(),
    ]
    defs = [
        dataclasses.replace(d, inline=_INLINE.get(d.name), inline_args=_INLINE_ARGS.get(d.name, {}))
        for d in defs
    ]
    return FieldTable(
        source=SOURCE,
        fields={d.name: d for d in defs},
        index_fields=(
            ("ka.verb",),
            ("ka.target.resource",),
            ("ka.stage", "jevt.value[/stage]"),
        ),
        index_key=_index_key,
    )


class K8sAuditSource:
    """The ``k8s_audit`` event source: evaluated on ``AuditEvent``."""

    def __init__(self) -> None:
        self._table = build_table()

    @property
    def name(self) -> str:
        return SOURCE

    @property
    def table(self) -> FieldTable:
        return self._table
