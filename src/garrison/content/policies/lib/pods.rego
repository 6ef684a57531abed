# The pod spec of a Pod or of any workload's pod template, and its containers.
# Kept small: regorus evaluates a library's rules as a package, once per evaluation.
package lib.garrison.pods

import rego.v1

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

kind := input.review.object.kind

# Each branch reads only the path it needs (not the whole object), so a review's result can
# be shared with the reviews that differ only elsewhere (a ReplicaSet's pods: name, uid; and
# once scheduled, nodeName, which no check here reads: it is left out of a Pod's spec).
# Undefined for other kinds; {} for a pod-bearing kind without a spec.
spec := s if {
	kind == "Pod"
	s := object.remove(input.review.object.spec, {"nodeName"})
} else := s if {
	kind in workload_kinds
	s := input.review.object.spec.template.spec
} else := s if {
	kind == "CronJob"
	s := input.review.object.spec.jobTemplate.spec.template.spec
} else := {} if {
	kind in workload_kinds | {"Pod", "CronJob"}
}

# A running Pod's spec is immutable but for images: updates are not re-judged (as Gatekeeper's
# exclude_update library does), so labelling a running pod is never blocked.
applies if not [kind, input.review.operation] == ["Pod", "UPDATE"]

# Arrays, not sets: a set of container objects hashes and orders every one of them.
all_containers := [c | some field in ["containers", "initContainers", "ephemeralContainers"]; some c in object.get(spec, field, [])]

exempt_images := object.get(input.parameters, "exemptImages", [])

# Containers the policy judges: all of them but those whose image is exempt.
containers := [c | some c in all_containers; not exempt_image(c)]

exempt_image(c) if {
	some pattern in exempt_images
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
