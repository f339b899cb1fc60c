"""A bundle and one case to a calibrated answer: the Case/Result data, the runner, the Predictor, the rule, the checks. Layer 3."""
