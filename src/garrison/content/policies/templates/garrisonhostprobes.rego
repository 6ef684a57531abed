package garrisonhostprobes

import data.lib.garrison.pods
import rego.v1

handlers contains [c.name, probe, c[probe]] if {
	some c in pods.containers
	some probe in ["livenessProbe", "readinessProbe", "startupProbe"]
	c[probe]
}

handlers contains [c.name, concat(".", ["lifecycle", hook]), c.lifecycle[hook]] if {
	some c in pods.containers
	some hook in ["postStart", "preStop"]
}

violation contains {"msg": msg} if {
	pods.applies
	some [name, where, handler] in handlers
	some action in ["httpGet", "tcpSocket"]
	host := handler[action].host
	host != ""
	msg := sprintf("container %v: %v.%v.host (%v) may not be set", [name, where, action, host])
}
