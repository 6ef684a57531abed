"""Source ``k8s_audit``: fields of Falco's k8saudit (``ka.*``) and json (``jevt.*``) plugins.

Values follow the plugin: strings as they are, other JSON values as their JSON text (so
``true``, ``201``), lists as lists of such strings. A missing key means "not available".
Evaluated on ``garrison.events.AuditEvent``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from garrison.events.audit import AuditEvent
from garrison.rules.fields import EvalContext, FieldDef, FieldTable, FieldValueT

SOURCE = "k8s_audit"
_MISSING = object()
Extract = Callable[[EvalContext, str | None], FieldValueT]


def json_text(value: Any) -> str:
    """A JSON value as the plugin renders it: strings raw, everything else as JSON."""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _req(ctx: EvalContext) -> Any:
    event: AuditEvent = ctx.event
    return event.request_object


def _scalar(
    getter: Callable[[AuditEvent], Any],
) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        value = getter(ctx.event)
        if value is None or value is _MISSING or value == "":
            return None
        return json_text(value)

    return extract


def _req_scalar(*keys: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        value = _dig(_req(ctx), *keys)
        if value is _MISSING or value is None:
            return None
        return json_text(value)

    return extract


def _req_list(*keys: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        value = _dig(_req(ctx), *keys)
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
    items = _dig(_req(ctx), "spec", kind)
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
            value = _dig(item, *keys)
            if value is not _MISSING and value is not None:
                out.append(json_text(value))
        return out

    return extract


def _image_repository(image: str) -> str:
    """``registry:5000/ns/app:tag@sha`` → ``registry:5000/ns/app`` (port kept)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return name


def _images(kind: str, repository: bool) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        items = _containers(ctx, kind, arg)
        if items is None:
            return None
        out = []
        for item in items:
            image = _dig(item, "image")
            if isinstance(image, str):
                out.append(_image_repository(image) if repository else image)
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
        "true" if any(_dig(c, "securityContext", "privileged") is True for c in items) else "false"
    )


def _host_ports(ctx: EvalContext, arg: str | None) -> FieldValueT:
    items = _containers(ctx, "containers", arg)
    if items is None:
        return None
    out = []
    for item in items:
        ports = _dig(item, "ports")
        if not isinstance(ports, list):
            continue
        for port in ports:
            value = _dig(port, "hostPort")
            if value is _MISSING:
                value = _dig(port, "containerPort")
            if value is not _MISSING and value is not None:
                out.append(json_text(value))
    return out


def _effective(key: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        pod_value = _dig(_req(ctx), "spec", "securityContext", key)
        default = "0" if pod_value is _MISSING or pod_value is None else json_text(pod_value)
        items = _containers(ctx, "containers", arg)
        if items is None:
            return None
        out = []
        for item in items:
            value = _dig(item, "securityContext", key)
            out.append(default if value is _MISSING or value is None else json_text(value))
        return out

    return extract


def _role_rules(key: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        rules = _dig(_req(ctx), "rules")
        if not isinstance(rules, list):
            return None
        idx = _index(arg)
        if idx is not None:
            if idx < 0 or idx >= len(rules):
                return None
            rules = [rules[idx]]
        out: list[str] = []
        for rule in rules:
            values = _dig(rule, key)
            if isinstance(values, list):
                out.extend(json_text(v) for v in values if v is not None)
        return out

    return extract


def _volume_paths(ctx: EvalContext, arg: str | None) -> list[str] | None:
    volumes = _dig(_req(ctx), "spec", "volumes")
    if not isinstance(volumes, list):
        return None
    idx = _index(arg)
    if idx is not None:
        if idx < 0 or idx >= len(volumes):
            return None
        volumes = [volumes[idx]]
    out = []
    for volume in volumes:
        path = _dig(volume, "hostPath", "path")
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
    volumes = _dig(_req(ctx), "spec", "volumes")
    if not isinstance(volumes, list):
        return None
    return [k for v in volumes if isinstance(v, dict) for k in v if k != "name"]


def _flex_drivers(ctx: EvalContext, arg: str | None) -> FieldValueT:
    volumes = _dig(_req(ctx), "spec", "volumes")
    if not isinstance(volumes, list):
        return None
    out = []
    for volume in volumes:
        driver = _dig(volume, "flexVolume", "driver")
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
    ports = _dig(_req(ctx), "spec", "ports")
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


def _raw_time(ctx: EvalContext, arg: str | None) -> FieldValueT:
    cached = ctx.cache.get(("jevt.rawtime",))
    if cached is not None:
        return int(cached)
    event: AuditEvent = ctx.event
    stamp = event.stage_timestamp or event.request_received_timestamp or event.timestamp
    value = parse_timestamp_ns(stamp) if stamp else 0
    ctx.cache[("jevt.rawtime",)] = value
    return value


@functools.lru_cache(maxsize=4096)
def _utc_second_ns(prefix: str) -> int:
    """Epoch nanoseconds of ``YYYY-MM-DDTHH:MM:SS`` in UTC (a busy stream shares each second)."""
    return int(datetime.fromisoformat(prefix + "+00:00").timestamp()) * 1_000_000_000


def parse_timestamp_ns(stamp: str) -> int:
    """RFC 3339 with up to nanoseconds → integer nanoseconds since the epoch (0 if unparsable)."""
    if len(stamp) >= 20 and stamp[-1] == "Z" and stamp[19] in ".Z":
        fraction = stamp[20:-1]
        if fraction and not fraction.isdigit():
            return _parse_timestamp_slow(stamp)
        try:
            base = _utc_second_ns(stamp[:19])
            return base + (int((fraction + "000000000")[:9]) if fraction else 0)
        except ValueError:
            return _parse_timestamp_slow(stamp)
    return _parse_timestamp_slow(stamp)


def _parse_timestamp_slow(stamp: str) -> int:
    text = stamp.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    frac_ns = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        tail = rest[len(digits) :]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        text = head + tail
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return 0
    if moment.tzinfo is None:
        return 0
    return int(moment.timestamp()) * 1_000_000_000 + frac_ns


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
    value = _dig(ctx.event.response_object, "metadata", "name")
    return None if value is _MISSING or value is None else json_text(value)


def _sourceips(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ips: list[str] = ctx.event.source_ips
    return list(ips) if ips else None


def _useragent(ctx: EvalContext, arg: str | None) -> FieldValueT:
    agent: str = ctx.event.user_agent
    return agent or None


def _cluster_name(ctx: EvalContext, arg: str | None) -> FieldValueT:
    name = ctx.cache.get("cluster")
    return name if isinstance(name, str) and name else None


def _f(
    name: str,
    extract: Callable[[EvalContext, str | None], FieldValueT],
    *,
    is_list: bool = False,
    arg: str = "none",
    type: str = "string",
) -> FieldDef:
    return FieldDef(name, extract, type=type, is_list=is_list, arg=arg)  # type: ignore[arg-type]


def _container_fields() -> list[FieldDef]:
    out = []
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        base = f"ka.req.pod.{kind}"
        out += [
            _f(f"{base}.image", _images(kind, False), is_list=True, arg="optional"),
            _f(f"{base}.image.repository", _images(kind, True), is_list=True, arg="optional"),
            _f(
                f"{base}.privileged",
                _per_container(kind, "securityContext", "privileged"),
                is_list=True,
                arg="optional",
            ),
            _f(
                f"{base}.allow_privilege_escalation",
                _per_container(kind, "securityContext", "allowPrivilegeEscalation"),
                is_list=True,
                arg="optional",
            ),
            _f(
                f"{base}.read_only_fs",
                _per_container(kind, "securityContext", "readOnlyRootFilesystem"),
                is_list=True,
                arg="optional",
            ),
            _f(
                f"{base}.run_as_user",
                _per_container(kind, "securityContext", "runAsUser"),
                is_list=True,
                arg="optional",
            ),
            _f(
                f"{base}.run_as_group",
                _per_container(kind, "securityContext", "runAsGroup"),
                is_list=True,
                arg="optional",
            ),
            _f(
                f"{base}.proc_mount",
                _per_container(kind, "securityContext", "procMount"),
                is_list=True,
                arg="optional",
            ),
            _f(
                f"{base}.add_capabilities",
                _flat_caps(kind),
                is_list=True,
                arg="optional",
            ),
        ]
    return out


def _flat_caps(kind: str) -> Callable[[EvalContext, str | None], FieldValueT]:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        items = _containers(ctx, kind, arg)
        if items is None:
            return None
        out: list[str] = []
        for item in items:
            caps = _dig(item, "securityContext", "capabilities", "add")
            if isinstance(caps, list):
                out.extend(json_text(c) for c in caps)
        return out

    return extract


# -- garrison extensions (``ka.ext.*``): what Defender-parity rules need beyond the plugin ------

_TEMPLATE_PATHS = {
    "pods": ("spec",),
    "podtemplates": ("template", "spec"),
    "deployments": ("spec", "template", "spec"),
    "daemonsets": ("spec", "template", "spec"),
    "statefulsets": ("spec", "template", "spec"),
    "replicasets": ("spec", "template", "spec"),
    "replicationcontrollers": ("spec", "template", "spec"),
    "jobs": ("spec", "template", "spec"),
    "cronjobs": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_RESOURCES = frozenset(_TEMPLATE_PATHS)
_CONTAINER_KINDS = ("containers", "initContainers", "ephemeralContainers")


def written_object(event: AuditEvent) -> Any:
    """The object a write request leaves behind.

    For ``patch`` the request body is a patch document, so the response object (logged at
    RequestResponse level) is preferred; a strategic-merge patch has the object's shape and
    serves when no response is logged.
    """
    if event.verb == "patch" and isinstance(event.response_object, dict):
        return event.response_object
    if isinstance(event.request_object, dict):
        return event.request_object
    if isinstance(event.response_object, dict) and event.verb in ("create", "update"):
        return event.response_object
    return None


def pod_spec(ctx: EvalContext) -> Any:
    """The pod spec of a pod, a pod template or any workload that carries one."""
    key = ("podspec",)
    if key in ctx.cache:
        return ctx.cache[key]
    event: AuditEvent = ctx.event
    spec: Any = None
    ref = event.object_ref
    path = _TEMPLATE_PATHS.get(ref.resource) if ref is not None and not ref.subresource else None
    obj = written_object(event) if path is not None else None
    if path is not None and obj is not None:
        found = _dig(obj, *path)
        spec = found if isinstance(found, dict) else None
    ctx.cache[key] = spec
    return spec


def _all_containers(ctx: EvalContext) -> list[Any] | None:
    spec = pod_spec(ctx)
    if spec is None:
        return None
    out: list[Any] = []
    for kind in _CONTAINER_KINDS:
        items = spec.get(kind)
        if isinstance(items, list):
            out.extend(c for c in items if isinstance(c, dict))
    return out


def _spec_images(repository: bool) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        containers = _all_containers(ctx)
        if containers is None:
            return None
        images = [c["image"] for c in containers if isinstance(c.get("image"), str)]
        return [_image_repository(i) for i in images] if repository else images

    return extract


def _spec_container_values(*keys: str, flatten: bool = False) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        containers = _all_containers(ctx)
        if containers is None:
            return None
        out: list[str] = []
        for container in containers:
            value = _dig(container, *keys)
            if value is _MISSING or value is None:
                continue
            if flatten and isinstance(value, list):
                out.extend(json_text(v) for v in value)
            else:
                out.append(json_text(value))
        return out

    return extract


def _spec_scalar(key: str) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        spec = pod_spec(ctx)
        if spec is None or spec.get(key) is None:
            return None
        return json_text(spec[key])

    return extract


def _spec_hostpaths(ctx: EvalContext, arg: str | None) -> FieldValueT:
    spec = pod_spec(ctx)
    if spec is None:
        return None
    volumes = spec.get("volumes")
    if not isinstance(volumes, list):
        return []
    out = []
    for volume in volumes:
        path = _dig(volume, "hostPath", "path")
        if isinstance(path, str):
            out.append(path.rstrip("/") or "/")
    return out


def _spec_host_ports(ctx: EvalContext, arg: str | None) -> FieldValueT:
    containers = _all_containers(ctx)
    if containers is None:
        return None
    out = []
    for container in containers:
        for port in container.get("ports") or []:
            value = _dig(port, "hostPort")
            if isinstance(value, int) and value:
                out.append(str(value))
    return out


def _service_port_numbers(ctx: EvalContext, arg: str | None) -> FieldValueT:
    event: AuditEvent = ctx.event
    obj = written_object(event)
    ports = _dig(obj, "spec", "ports")
    if not isinstance(ports, list):
        return None
    out: list[str] = []
    for port in ports:
        for key in ("port", "targetPort", "nodePort"):
            value = _dig(port, key)
            if isinstance(value, (int, str)) and value != "":
                out.append(str(value))
    return out


def _service_type(ctx: EvalContext, arg: str | None) -> FieldValueT:
    value = _dig(written_object(ctx.event), "spec", "type")
    return value if isinstance(value, str) else None


def _service_source_ranges(ctx: EvalContext, arg: str | None) -> FieldValueT:
    value = _dig(written_object(ctx.event), "spec", "loadBalancerSourceRanges")
    if not isinstance(value, list) or not value:
        return None
    return [str(v) for v in value]


def _object_text(ctx: EvalContext, arg: str | None) -> FieldValueT:
    obj = written_object(ctx.event)
    return None if obj is None else json_text(obj)


def _object_labels(ctx: EvalContext, arg: str | None) -> FieldValueT:
    obj = written_object(ctx.event)
    labels = _dig(obj, "metadata", "labels")
    if not isinstance(labels, dict) or not arg:
        return None
    value = labels.get(arg)
    return None if value is None else json_text(value)


def _owner_kind(ctx: EvalContext, arg: str | None) -> FieldValueT:
    owners = _dig(written_object(ctx.event), "metadata", "ownerReferences")
    if not isinstance(owners, list) or not owners or not isinstance(owners[0], dict):
        return None
    kind = owners[0].get("kind")
    return kind if isinstance(kind, str) else None


def _binding_subject_names(ctx: EvalContext, arg: str | None) -> FieldValueT:
    subjects = _dig(written_object(ctx.event), "subjects")
    if not isinstance(subjects, list):
        return None
    return [s["name"] for s in subjects if isinstance(s, dict) and isinstance(s.get("name"), str)]


def _binding_role(ctx: EvalContext, arg: str | None) -> FieldValueT:
    value = _dig(written_object(ctx.event), "roleRef", "name")
    return value if isinstance(value, str) else None


def _role_rule_values(key: str) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        rules = _dig(written_object(ctx.event), "rules")
        if not isinstance(rules, list):
            return None
        out: list[str] = []
        for rule in rules:
            values = _dig(rule, key)
            if isinstance(values, list):
                out.extend(str(v) for v in values)
        return out

    return extract


def _configmap_values(ctx: EvalContext, arg: str | None) -> FieldValueT:
    data = _dig(written_object(ctx.event), "data")
    if not isinstance(data, dict):
        return None
    return [v for v in data.values() if isinstance(v, str)]


def _client_ip(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ips: list[str] = ctx.event.source_ips
    return ips[-1] if ips else None


def _extension_fields() -> list[FieldDef]:
    return [
        _f("ka.ext.podspec.images", _spec_images(False), is_list=True),
        _f("ka.ext.podspec.images.repository", _spec_images(True), is_list=True),
        _f(
            "ka.ext.podspec.privileged",
            _spec_container_values("securityContext", "privileged"),
            is_list=True,
        ),
        _f(
            "ka.ext.podspec.add_capabilities",
            _spec_container_values("securityContext", "capabilities", "add", flatten=True),
            is_list=True,
        ),
        _f("ka.ext.podspec.hostpaths", _spec_hostpaths, is_list=True),
        _f("ka.ext.podspec.host_ports", _spec_host_ports, is_list=True),
        _f("ka.ext.podspec.host_network", _spec_scalar("hostNetwork")),
        _f("ka.ext.podspec.host_pid", _spec_scalar("hostPID")),
        _f("ka.ext.podspec.host_ipc", _spec_scalar("hostIPC")),
        _f("ka.ext.obj", _object_text),
        _f("ka.ext.obj.label", _object_labels, arg="required"),
        _f("ka.ext.owner.kind", _owner_kind),
        _f("ka.ext.service.type", _service_type),
        _f("ka.ext.service.port_numbers", _service_port_numbers, is_list=True),
        _f("ka.ext.service.source_ranges", _service_source_ranges, is_list=True),
        _f("ka.ext.binding.role", _binding_role),
        _f("ka.ext.binding.subject_names", _binding_subject_names, is_list=True),
        _f("ka.ext.role.verbs", _role_rule_values("verbs"), is_list=True),
        _f("ka.ext.role.resources", _role_rule_values("resources"), is_list=True),
        _f("ka.ext.configmap.values", _configmap_values, is_list=True),
        _f("ka.ext.client_ip", _client_ip),
    ]


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
        _f("ka.auditid", _scalar(lambda e: e.audit_id)),
        _f("ka.stage", _scalar(lambda e: e.stage)),
        _f("ka.auth.decision", _annotation("authorization.k8s.io/decision")),
        _f("ka.auth.reason", _annotation("authorization.k8s.io/reason")),
        _f("ka.user.name", _user),
        _f("ka.user.groups", _groups, is_list=True),
        _f("ka.impuser.name", _impuser),
        _f("ka.verb", _scalar(lambda e: e.verb)),
        _f("ka.uri", _scalar(lambda e: e.request_uri)),
        _f("ka.uri.param", _uri_param, arg="required"),
        _f("ka.target.name", _objref("name")),
        _f("ka.target.namespace", _objref("namespace")),
        _f("ka.target.resource", _objref("resource")),
        _f("ka.target.subresource", _objref("subresource")),
        _f("ka.target.apigroup", _objref("api_group")),
        _f("ka.req.binding.subjects", _req_list("subjects"), is_list=True),
        _f("ka.req.binding.role", _req_scalar("roleRef", "name")),
        _f("ka.req.binding.subject.has_name", lambda c, a: "true", arg="required"),
        _f("ka.req.configmap.name", _objref("name")),
        _f("ka.req.configmap.obj", _req_scalar("data")),
        _f("ka.req.container.image", _first_image(False)),
        _f("ka.req.container.image.repository", _first_image(True)),
        _f("ka.req.container.privileged", _any_privileged),
        _f("ka.req.pod.host_ipc", _req_scalar("spec", "hostIPC")),
        _f("ka.req.pod.host_network", _req_scalar("spec", "hostNetwork")),
        _f("ka.req.container.host_network", _req_scalar("spec", "hostNetwork")),
        _f("ka.req.pod.host_pid", _req_scalar("spec", "hostPID")),
        _f("ka.req.pod.containers.host_port", _host_ports, is_list=True, arg="optional"),
        _f(
            "ka.req.pod.containers.eff_run_as_user",
            _effective("runAsUser"),
            is_list=True,
            arg="optional",
        ),
        _f(
            "ka.req.pod.containers.eff_run_as_group",
            _effective("runAsGroup"),
            is_list=True,
            arg="optional",
        ),
        _f("ka.req.pod.run_as_user", _req_scalar("spec", "securityContext", "runAsUser")),
        _f("ka.req.pod.run_as_group", _req_scalar("spec", "securityContext", "runAsGroup")),
        _f("ka.req.pod.fs_group", _req_scalar("spec", "securityContext", "fsGroup")),
        _f(
            "ka.req.pod.supplemental_groups",
            _req_list("spec", "securityContext", "supplementalGroups"),
            is_list=True,
        ),
        _f("ka.req.role.rules", _req_list("rules"), is_list=True),
        _f("ka.req.role.rules.apiGroups", _role_rules("apiGroups"), is_list=True, arg="optional"),
        _f(
            "ka.req.role.rules.nonResourceURLs",
            _role_rules("nonResourceURLs"),
            is_list=True,
            arg="optional",
        ),
        _f("ka.req.role.rules.verbs", _role_rules("verbs"), is_list=True, arg="optional"),
        _f("ka.req.role.rules.resources", _role_rules("resources"), is_list=True, arg="optional"),
        _f("ka.req.service.type", _req_scalar("spec", "type")),
        _f("ka.req.service.ports", _service_ports, is_list=True, arg="optional"),
        _f("ka.req.volume.hostpath", _volume_hostpath_legacy, arg="required"),
        _f("ka.req.pod.volumes.hostpath", _volume_paths, is_list=True, arg="optional"),
        _f("ka.req.pod.volumes.flexvolume_driver", _flex_drivers, is_list=True, arg="optional"),
        _f("ka.req.pod.volumes.volume_type", _volume_types, is_list=True, arg="optional"),
        _f("ka.resp.name", _resp_name),
        _f("ka.response.code", _response_code),
        _f("ka.response.reason", _response_reason),
        _f("ka.useragent", _useragent),
        _f("ka.sourceips", _sourceips, is_list=True),
        _f("ka.cluster.name", _cluster_name),
        _f("jevt.value", _json_pointer, arg="required"),
        _f("jevt.obj", _jevt_obj),
        _f("jevt.rawtime", _raw_time, type="number"),
        _f("jevt.time", lambda c, a: c.event.stage_timestamp or None),
        *_container_fields(),
        *_extension_fields(),
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
