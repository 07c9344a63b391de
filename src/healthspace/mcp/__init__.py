"""MCP server: thin, consent-gated wrappers over insights and the assistant."""
