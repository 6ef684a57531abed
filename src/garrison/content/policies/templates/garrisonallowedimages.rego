package garrisonallowedimages

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	not regex.match(input.parameters.imageRegex, c.image)
	msg := sprintf("container %v uses image %v, which does not match %v", [c.name, c.image, input.parameters.imageRegex])
}
