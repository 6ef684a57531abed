package garrisonselinux

import data.lib.garrison.pods
import rego.v1

default_types := ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]

allowed := object.get(input.parameters, "allowedTypes", default_types)

options contains ["pod", pods.spec.securityContext.seLinuxOptions]

options contains [c.name, c.securityContext.seLinuxOptions] if some c in pods.containers

violation contains {"msg": msg} if {
	pods.applies
	some [who, opts] in options
	t := object.get(opts, "type", "")
	not t in allowed
	msg := sprintf("SELinux type %v of %v is not allowed; allowed: %v", [t, who, allowed])
}

violation contains {"msg": msg} if {
	pods.applies
	some [who, opts] in options
	some field in ["user", "role"]
	object.get(opts, field, "") != ""
	msg := sprintf("SELinux %v may not be set (%v)", [field, who])
}
