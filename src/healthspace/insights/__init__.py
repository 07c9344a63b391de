"""Deterministic analytics over stored records, every fact citing its record ids."""
