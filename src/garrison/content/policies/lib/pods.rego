# The pod spec of a Pod or of any workload's pod template, and its containers.
# Kept small and flat: regorus evaluates a library's rules as a package, and rules with
# several definitions cost more than one lookup in a table.
package lib.garrison.pods

import rego.v1

spec_paths := {
	"Pod": ["spec"],
	"Deployment": ["spec", "template", "spec"],
	"StatefulSet": ["spec", "template", "spec"],
	"DaemonSet": ["spec", "template", "spec"],
	"ReplicaSet": ["spec", "template", "spec"],
	"ReplicationController": ["spec", "template", "spec"],
	"Job": ["spec", "template", "spec"],
	"CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
}

obj := input.review.object

spec := object.get(obj, spec_paths[obj.kind], {})

# A running Pod's spec is immutable but for images: updates are not re-judged (as Gatekeeper's
# exclude_update library does), so labelling a running pod is never blocked.
applies if not [obj.kind, input.review.operation] == ["Pod", "UPDATE"]

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
