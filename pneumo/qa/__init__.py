"""The benchmark and the hostile-input corpus. Layer 5."""
