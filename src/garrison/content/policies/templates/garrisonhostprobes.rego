package garrisonhostprobes

import data.lib.garrison.pods
import rego.v1

handler_fields := ["livenessProbe", "readinessProbe", "startupProbe"]

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	some field in handler_fields
	some action in ["httpGet", "tcpSocket"]
	host := object.get(c, [field, action, "host"], "")
	host != ""
	msg := sprintf("container %v: %v.%v.host (%v) may not be set", [c.name, field, action, host])
}

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	some hook in ["postStart", "preStop"]
	some action in ["httpGet", "tcpSocket"]
	host := object.get(c, ["lifecycle", hook, action, "host"], "")
	host != ""
	msg := sprintf("container %v: lifecycle.%v.%v.host (%v) may not be set", [c.name, hook, action, host])
}
