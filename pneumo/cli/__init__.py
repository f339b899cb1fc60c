"""`python -m pneumo ...`: the command line. Layer 5."""
