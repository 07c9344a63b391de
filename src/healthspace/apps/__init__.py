"""Outbound apps: manifests, consent and the egress gateway."""
