package garrisonhostprocess

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": "HostProcess pods are not allowed"} if {
	pods.applies
	pods.spec.securityContext.windowsOptions.hostProcess == true
}

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	c.securityContext.windowsOptions.hostProcess == true
	msg := sprintf("HostProcess container is not allowed: %v", [c.name])
}
