package garrisoninternallb

import rego.v1

default_annotations := [
	{"key": "service.beta.kubernetes.io/azure-load-balancer-internal", "value": "true"},
	{"key": "service.beta.kubernetes.io/aws-load-balancer-internal", "value": "true"},
	{"key": "service.beta.kubernetes.io/aws-load-balancer-scheme", "value": "internal"},
	{"key": "networking.gke.io/load-balancer-type", "value": "Internal"},
]

service := input.review.object

internal if {
	some a in object.get(input.parameters, "annotations", default_annotations)
	service.metadata.annotations[a.key] == a.value
}

violation contains {"msg": msg} if {
	service.kind == "Service"
	service.spec.type == "LoadBalancer"
	not internal
	msg := sprintf("Service %v is a public load balancer; annotate it as internal", [service.metadata.name])
}
