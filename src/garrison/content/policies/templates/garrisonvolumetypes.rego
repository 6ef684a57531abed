package garrisonvolumetypes

import data.lib.garrison.pods
import rego.v1

allowed := object.get(input.parameters, "allowedTypes", [])

violation contains {"msg": msg} if {
	pods.applies
	not "*" in allowed
	some v in object.get(pods.spec, "volumes", [])
	some field, _ in v
	field != "name"
	not field in allowed
	msg := sprintf("volume %v has type %v; allowed: %v", [v.name, field, allowed])
}
