"""Input formats: bytes in, model items out; pure (no database, no network)."""
