package garrisonblockdefaultnamespace

import rego.v1

obj := input.review.object

# the object's namespace, or the request's on a CREATE that leaves it to the API server
namespace := object.get(obj.metadata, "namespace", object.get(input.review, "namespace", ""))

name := object.get(obj.metadata, "name", object.get(obj.metadata, "generateName", ""))

violation contains {"msg": msg} if {
	namespace == "default"
	msg := sprintf("%v %v is in the default namespace; use a namespace of its own", [obj.kind, name])
}
