"""Inputs to arrays and tables (no Keras): films, lab panels, cohorts, the preprocessed-film cache. Layer 1."""
