"""A cohort to a bundle: the backbone, the head's training loop, calibration, ensembles, reference sets. Layer 4."""
