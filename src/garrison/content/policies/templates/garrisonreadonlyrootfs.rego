package garrisonreadonlyrootfs

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": msg} if {
	pods.applies
	some c in pods.containers
	not c.securityContext.readOnlyRootFilesystem == true
	msg := sprintf("container %v must set securityContext.readOnlyRootFilesystem: true", [c.name])
}
