package garrisonhostpath

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": msg} if {
	pods.applies
	some v in object.get(pods.spec, "volumes", [])
	path := v.hostPath.path
	not allowed(v.name, path)
	msg := sprintf("hostPath volume %v (%v) is not allowed", [v.name, path])
}

allowed(name, path) if {
	some a in object.get(input.parameters, "allowedHostPaths", [])
	under(path, a.pathPrefix)
	read_only_kept(name, a)
}

under(path, prefix) if path == prefix

under(path, prefix) if startswith(path, concat("", [trim_suffix(prefix, "/"), "/"]))

read_only_kept(_, a) if not a.readOnly == true

read_only_kept(name, a) if {
	a.readOnly == true
	not writable_mount(name)
}

writable_mount(name) if {
	some c in pods.all_containers
	some m in object.get(c, "volumeMounts", [])
	m.name == name
	not m.readOnly == true
}
