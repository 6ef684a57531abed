"""Runtime threat detection on the sensor's events: rules, drift policy, baselines, hygiene."""
