# The metadata of a Pod or of any workload's pod template (annotations live there).
package lib.garrison.podmeta

import rego.v1

metadata_paths := {
	"Pod": ["metadata"],
	"Deployment": ["spec", "template", "metadata"],
	"StatefulSet": ["spec", "template", "metadata"],
	"DaemonSet": ["spec", "template", "metadata"],
	"ReplicaSet": ["spec", "template", "metadata"],
	"ReplicationController": ["spec", "template", "metadata"],
	"Job": ["spec", "template", "metadata"],
	"CronJob": ["spec", "jobTemplate", "spec", "template", "metadata"],
}

metadata := object.get(input.review.object, metadata_paths[input.review.object.kind], {})
