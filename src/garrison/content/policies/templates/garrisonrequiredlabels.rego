package garrisonrequiredlabels

import rego.v1

labels := object.get(input.review.object, ["metadata", "labels"], {})

violation contains {"msg": msg} if {
	some required in input.parameters.labels
	not labels[required.key]
	msg := sprintf("label %v is required", [required.key])
}

violation contains {"msg": msg} if {
	some required in input.parameters.labels
	value := labels[required.key]
	object.get(required, "allowedRegex", "") != ""
	not regex.match(required.allowedRegex, value)
	msg := sprintf("label %v: %v does not match %v", [required.key, value, required.allowedRegex])
}
