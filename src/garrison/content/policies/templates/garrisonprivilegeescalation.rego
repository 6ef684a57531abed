package garrisonprivilegeescalation

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": msg} if {
	pods.applies
	not pods.spec.os.name == "windows"
	some c in pods.containers
	not c.securityContext.allowPrivilegeEscalation == false
	msg := sprintf("container %v must set securityContext.allowPrivilegeEscalation: false", [c.name])
}
