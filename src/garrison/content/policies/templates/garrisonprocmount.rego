package garrisonprocmount

import data.lib.garrison.pods
import rego.v1

allowed := object.get(input.parameters, "allowedProcMountTypes", ["Default"])

violation contains {"msg": msg} if {
	pods.applies
	not pods.spec.hostUsers == false
	some c in pods.containers
	mount := c.securityContext.procMount
	not mount in allowed
	msg := sprintf("container %v uses procMount %v; allowed: %v", [c.name, mount, allowed])
}
