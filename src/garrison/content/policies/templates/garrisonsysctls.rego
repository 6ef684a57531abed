package garrisonsysctls

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": msg} if {
	pods.applies
	some s in object.get(pods.spec, ["securityContext", "sysctls"], [])
	not s.name in object.get(input.parameters, "allowedSysctls", [])
	msg := sprintf("sysctl %v is not allowed", [s.name])
}
