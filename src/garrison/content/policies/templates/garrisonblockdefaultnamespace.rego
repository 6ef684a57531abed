package garrisonblockdefaultnamespace

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": msg} if {
	pods.namespace == "default"
	msg := sprintf("%v %v is in the default namespace; use a namespace of its own", [pods.obj.kind, pods.obj.metadata.name])
}
