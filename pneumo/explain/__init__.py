"""Explanations as pure maths over arrays: Grad-CAM on the film, SHAP on the labs. Layer 3."""
