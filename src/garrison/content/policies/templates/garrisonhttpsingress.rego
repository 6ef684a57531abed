package garrisonhttpsingress

import rego.v1

ingress := input.review.object

violation contains {"msg": msg} if {
	ingress.kind == "Ingress"
	count(object.get(ingress, ["spec", "tls"], [])) == 0
	msg := sprintf("Ingress %v must terminate TLS (spec.tls)", [ingress.metadata.name])
}

violation contains {"msg": msg} if {
	ingress.kind == "Ingress"
	not ingress.metadata.annotations["kubernetes.io/ingress.allow-http"] == "false"
	msg := sprintf("Ingress %v must set the annotation kubernetes.io/ingress.allow-http: \"false\"", [ingress.metadata.name])
}
