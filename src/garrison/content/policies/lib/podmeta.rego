# The annotations of a Pod or of any workload's pod template.
package lib.garrison.podmeta

import rego.v1

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

kind := input.review.object.kind

# Only the annotations are read (not the name or uid beside them): see lib/pods.rego.
annotations := a if {
	kind == "Pod"
	a := input.review.object.metadata.annotations
} else := a if {
	kind in workload_kinds
	a := input.review.object.spec.template.metadata.annotations
} else := a if {
	kind == "CronJob"
	a := input.review.object.spec.jobTemplate.spec.template.metadata.annotations
} else := {} if {
	kind in workload_kinds | {"Pod", "CronJob"}
}
