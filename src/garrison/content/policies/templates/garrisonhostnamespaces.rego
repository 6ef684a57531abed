package garrisonhostnamespaces

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": msg} if {
	pods.applies
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	object.get(pods.spec, field, false) == true
	msg := sprintf("sharing the host's namespaces is not allowed: %v is true", [field])
}
