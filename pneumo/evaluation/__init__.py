"""Metrics, bootstrap intervals and robustness reports. Layer 3."""
