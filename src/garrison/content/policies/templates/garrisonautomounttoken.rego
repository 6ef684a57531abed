package garrisonautomounttoken

import data.lib.garrison.pods
import rego.v1

violation contains {"msg": "the pod must set automountServiceAccountToken: false"} if {
	pods.applies
	not pods.spec.automountServiceAccountToken == false
}
