package garrisonprivileged

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	c.securityContext.privileged == true
	msg := sprintf("privileged container is not allowed: %v", [c.name])
}
