"""The fusion network and its saved form: Keras layers, the head's Features, calibration, the bundle folder. Layer 2."""
