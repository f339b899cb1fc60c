"""Running cases for people: batches, the case log, sign-in, server folders, spreadsheet-safe CSV. Layer 4."""
