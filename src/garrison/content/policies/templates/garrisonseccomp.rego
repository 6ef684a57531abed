package garrisonseccomp

import data.lib.garrison.pods
import rego.v1

allowed := object.get(input.parameters, "allowedProfiles", ["RuntimeDefault", "Localhost"])

profile(c) := c.securityContext.seccompProfile.type

profile(c) := pods.spec.securityContext.seccompProfile.type if not c.securityContext.seccompProfile.type

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	p := profile(c)
	not p in allowed
	msg := sprintf("container %v uses seccomp profile %v; allowed: %v", [c.name, p, allowed])
}

violation contains {"msg": msg} if {
	pods.applies
	input.parameters.requireProfile == true
	some c in pods.containers
	not profile(c)
	msg := sprintf("container %v has no seccomp profile; set one of %v", [c.name, allowed])
}
