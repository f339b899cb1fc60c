"""pneumo: a multimodal (chest X-ray + admission labs) second opinion on pneumonia."""
__version__ = "0.1.0"
