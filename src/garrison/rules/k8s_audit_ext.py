"""garrison's extension fields of the ``k8s_audit`` source (``ka.ext.*``).

What Defender-parity rules need beyond Falco's k8saudit plugin: the pod spec inside any
workload, patches read through the response object, services, RBAC objects, configmaps.
"""

from __future__ import annotations

from typing import Any

from garrison.events.audit import AuditEvent
from garrison.rules.fields import EvalContext, FieldDef, FieldValueT
from garrison.rules.k8s_audit_values import (
    MISSING,
    Extract,
    dig,
    image_repository,
    json_text,
    make_field,
)

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
        found = dig(obj, *path)
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
        return [image_repository(i) for i in images] if repository else images

    return extract


def _spec_container_values(*keys: str, flatten: bool = False) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        containers = _all_containers(ctx)
        if containers is None:
            return None
        out: list[str] = []
        for container in containers:
            value = dig(container, *keys)
            if value is MISSING or value is None:
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
        path = dig(volume, "hostPath", "path")
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
            value = dig(port, "hostPort")
            if isinstance(value, int) and value:
                out.append(str(value))
    return out


def _service_port_numbers(ctx: EvalContext, arg: str | None) -> FieldValueT:
    event: AuditEvent = ctx.event
    obj = written_object(event)
    ports = dig(obj, "spec", "ports")
    if not isinstance(ports, list):
        return None
    out: list[str] = []
    for port in ports:
        for key in ("port", "targetPort", "nodePort"):
            value = dig(port, key)
            if isinstance(value, (int, str)) and value != "":
                out.append(str(value))
    return out


def _service_type(ctx: EvalContext, arg: str | None) -> FieldValueT:
    value = dig(written_object(ctx.event), "spec", "type")
    return value if isinstance(value, str) else None


def _service_source_ranges(ctx: EvalContext, arg: str | None) -> FieldValueT:
    value = dig(written_object(ctx.event), "spec", "loadBalancerSourceRanges")
    if not isinstance(value, list) or not value:
        return None
    return [str(v) for v in value]


def _object_text(ctx: EvalContext, arg: str | None) -> FieldValueT:
    obj = written_object(ctx.event)
    return None if obj is None else json_text(obj)


def _object_labels(ctx: EvalContext, arg: str | None) -> FieldValueT:
    obj = written_object(ctx.event)
    labels = dig(obj, "metadata", "labels")
    if not isinstance(labels, dict) or not arg:
        return None
    value = labels.get(arg)
    return None if value is None else json_text(value)


def _owner_kind(ctx: EvalContext, arg: str | None) -> FieldValueT:
    owners = dig(written_object(ctx.event), "metadata", "ownerReferences")
    if not isinstance(owners, list) or not owners or not isinstance(owners[0], dict):
        return None
    kind = owners[0].get("kind")
    return kind if isinstance(kind, str) else None


def _binding_subject_names(ctx: EvalContext, arg: str | None) -> FieldValueT:
    subjects = dig(written_object(ctx.event), "subjects")
    if not isinstance(subjects, list):
        return None
    return [s["name"] for s in subjects if isinstance(s, dict) and isinstance(s.get("name"), str)]


def _binding_role(ctx: EvalContext, arg: str | None) -> FieldValueT:
    value = dig(written_object(ctx.event), "roleRef", "name")
    return value if isinstance(value, str) else None


def _role_rule_values(key: str) -> Extract:
    def extract(ctx: EvalContext, arg: str | None) -> FieldValueT:
        rules = dig(written_object(ctx.event), "rules")
        if not isinstance(rules, list):
            return None
        out: list[str] = []
        for rule in rules:
            values = dig(rule, key)
            if isinstance(values, list):
                out.extend(str(v) for v in values)
        return out

    return extract


def _configmap_values(ctx: EvalContext, arg: str | None) -> FieldValueT:
    data = dig(written_object(ctx.event), "data")
    if not isinstance(data, dict):
        return None
    return [v for v in data.values() if isinstance(v, str)]


def _client_ip(ctx: EvalContext, arg: str | None) -> FieldValueT:
    ips: list[str] = ctx.event.source_ips
    return ips[-1] if ips else None


def extension_fields() -> list[FieldDef]:
    return [
        make_field("ka.ext.podspec.images", _spec_images(False), is_list=True),
        make_field("ka.ext.podspec.images.repository", _spec_images(True), is_list=True),
        make_field(
            "ka.ext.podspec.privileged",
            _spec_container_values("securityContext", "privileged"),
            is_list=True,
        ),
        make_field(
            "ka.ext.podspec.add_capabilities",
            _spec_container_values("securityContext", "capabilities", "add", flatten=True),
            is_list=True,
        ),
        make_field("ka.ext.podspec.hostpaths", _spec_hostpaths, is_list=True),
        make_field("ka.ext.podspec.host_ports", _spec_host_ports, is_list=True),
        make_field("ka.ext.podspec.host_network", _spec_scalar("hostNetwork")),
        make_field("ka.ext.podspec.host_pid", _spec_scalar("hostPID")),
        make_field("ka.ext.podspec.host_ipc", _spec_scalar("hostIPC")),
        make_field("ka.ext.obj", _object_text),
        make_field("ka.ext.obj.label", _object_labels, arg="required"),
        make_field("ka.ext.owner.kind", _owner_kind),
        make_field("ka.ext.service.type", _service_type),
        make_field("ka.ext.service.port_numbers", _service_port_numbers, is_list=True),
        make_field("ka.ext.service.source_ranges", _service_source_ranges, is_list=True),
        make_field("ka.ext.binding.role", _binding_role),
        make_field("ka.ext.binding.subject_names", _binding_subject_names, is_list=True),
        make_field("ka.ext.role.verbs", _role_rule_values("verbs"), is_list=True),
        make_field("ka.ext.role.resources", _role_rule_values("resources"), is_list=True),
        make_field("ka.ext.configmap.values", _configmap_values, is_list=True),
        make_field("ka.ext.client_ip", _client_ip),
    ]
