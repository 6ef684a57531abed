package garrisonresourcelimits

import data.lib.garrison.pods
import rego.v1

resources := {"cpu": "cpuLimit", "memory": "memoryLimit"}

amount("cpu", value) := units.parse(format_int_or_string(value))

amount("memory", value) := units.parse_bytes(format_int_or_string(value))

format_int_or_string(value) := value if is_string(value)

format_int_or_string(value) := format_int(value, 10) if is_number(value)

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	some resource, _ in resources
	not c.resources.limits[resource]
	msg := sprintf("container %v has no %v limit", [c.name, resource])
}

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	some resource, param in resources
	maximum := input.parameters[param]
	value := c.resources.limits[resource]
	amount(resource, value) > amount(resource, maximum)
	msg := sprintf("container %v: %v limit %v is above the allowed %v", [c.name, resource, value, maximum])
}
