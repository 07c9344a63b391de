"""The assistant: triage, routing, composing grounded answers; LLM backends in ``backends``."""
