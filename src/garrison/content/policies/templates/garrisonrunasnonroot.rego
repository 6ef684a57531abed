package garrisonrunasnonroot

import data.lib.garrison.pods
import rego.v1

non_root(c) if c.securityContext.runAsNonRoot == true

non_root(c) if {
	pods.spec.securityContext.runAsNonRoot == true
	not c.securityContext.runAsNonRoot == false
}

user(c) := c.securityContext.runAsUser

user(c) := pods.spec.securityContext.runAsUser if not c.securityContext.runAsUser

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	not non_root(c)
	msg := sprintf("container %v must set runAsNonRoot: true (in its or the pod's securityContext)", [c.name])
}

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	user(c) == 0
	msg := sprintf("container %v runs as user 0 (root)", [c.name])
}
