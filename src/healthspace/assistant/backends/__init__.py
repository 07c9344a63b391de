"""LLM backends: the only place that imports an LLM SDK."""
