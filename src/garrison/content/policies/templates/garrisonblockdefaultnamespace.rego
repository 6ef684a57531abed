package garrisonblockdefaultnamespace

import data.lib.garrison.pods
import rego.v1

name := object.get(pods.obj.metadata, "name", object.get(pods.obj.metadata, "generateName", ""))

violation contains {"msg": msg} if {
	pods.namespace == "default"
	msg := sprintf("%v %v is in the default namespace; use a namespace of its own", [pods.obj.kind, name])
}
