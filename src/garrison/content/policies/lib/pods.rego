# The pod spec of a Pod or of any workload's pod template, and its containers.
package lib.garrison.pods

import rego.v1

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

obj := input.review.object

spec := obj.spec if obj.kind == "Pod"

spec := obj.spec.template.spec if workload_kinds[obj.kind]

spec := obj.spec.jobTemplate.spec.template.spec if obj.kind == "CronJob"

metadata := object.get(obj, "metadata", {}) if obj.kind == "Pod"

metadata := object.get(obj.spec.template, "metadata", {}) if workload_kinds[obj.kind]

metadata := object.get(obj.spec.jobTemplate.spec.template, "metadata", {}) if obj.kind == "CronJob"

# A running Pod's spec is immutable but for images: updates are not re-judged (as Gatekeeper's
# exclude_update library does), so labelling a running pod is never blocked.
applies if not pod_update

pod_update if {
	obj.kind == "Pod"
	input.review.operation == "UPDATE"
}

container_fields := ["containers", "initContainers", "ephemeralContainers"]

all_containers contains c if {
	some field in container_fields
	some c in object.get(spec, field, [])
}

# Containers the policy judges: all of them but those whose image is exempt.
containers contains c if {
	some c in all_containers
	not exempt_image(c)
}

exempt_image(c) if {
	some pattern in object.get(input.parameters, "exemptImages", [])
	image_matches(pattern, c.image)
}

image_matches(pattern, image) if {
	endswith(pattern, "*")
	startswith(image, trim_suffix(pattern, "*"))
}

image_matches(pattern, image) if {
	not endswith(pattern, "*")
	pattern == image
}

# An object's namespace, from the object or, on CREATE with generateName, the request.
namespace := obj.metadata.namespace

namespace := input.review.namespace if not obj.metadata.namespace
