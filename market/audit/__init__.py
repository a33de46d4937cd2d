"""The append-only, hash-chained audit log that regulators rely on."""
