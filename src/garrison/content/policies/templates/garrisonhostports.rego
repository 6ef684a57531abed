package garrisonhostports

import data.lib.garrison.pods
import rego.v1

low := object.get(input.parameters, "min", 0)

high := object.get(input.parameters, "max", 0)

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	some p in object.get(c, "ports", [])
	port := object.get(p, "hostPort", 0)
	port != 0
	not in_range(port)
	msg := sprintf("container %v uses host port %v; allowed host ports are %v-%v", [c.name, port, low, high])
}

in_range(port) if {
	port >= low
	port <= high
}
