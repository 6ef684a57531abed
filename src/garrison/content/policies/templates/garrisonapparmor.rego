package garrisonapparmor

import data.lib.garrison.pods
import data.lib.garrison.podmeta
import rego.v1

allowed := object.get(input.parameters, "allowedProfiles", ["RuntimeDefault", "Localhost"])

prefix := "container.apparmor.security.beta.kubernetes.io/"

annotation_type(value) := "RuntimeDefault" if value == "runtime/default"

annotation_type(value) := "Localhost" if startswith(value, "localhost/")

annotation_type(value) := "Unconfined" if value == "unconfined"

violation contains {"msg": msg} if {
	pods.applies
	some key, value in podmeta.annotations
	startswith(key, prefix)
	value != ""
	kind := object.get({"t": annotation_type(value)}, "t", value)
	not kind in allowed
	msg := sprintf("AppArmor profile %v of container %v is not allowed; allowed: %v", [value, trim_prefix(key, prefix), allowed])
}

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	kind := c.securityContext.appArmorProfile.type
	not kind in allowed
	msg := sprintf("AppArmor profile %v of container %v is not allowed; allowed: %v", [kind, c.name, allowed])
}

violation contains {"msg": msg} if {
	pods.applies
	kind := pods.spec.securityContext.appArmorProfile.type
	not kind in allowed
	msg := sprintf("pod AppArmor profile %v is not allowed; allowed: %v", [kind, allowed])
}
