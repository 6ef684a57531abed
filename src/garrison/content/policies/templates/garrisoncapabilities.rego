package garrisoncapabilities

import data.lib.garrison.pods
import rego.v1

norm(cap) := upper(trim_prefix(upper(cap), "CAP_"))

allowed := {norm(c) | some c in object.get(input.parameters, "allowedCapabilities", [])}

required_drop := {norm(c) | some c in object.get(input.parameters, "requiredDropCapabilities", [])}

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	some cap in object.get(c, ["securityContext", "capabilities", "add"], [])
	not "*" in allowed
	not norm(cap) in allowed
	msg := sprintf("container %v adds capability %v; allowed: %v", [c.name, cap, sort(allowed)])
}

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	dropped := {norm(d) | some d in object.get(c, ["securityContext", "capabilities", "drop"], [])}
	not "ALL" in dropped
	missing := required_drop - dropped
	count(missing) > 0
	msg := sprintf("container %v must drop capabilities %v", [c.name, sort(missing)])
}
