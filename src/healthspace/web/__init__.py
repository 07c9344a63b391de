"""Web pages (Jinja2 + htmx) that talk only to the API. Arrives with the web work."""
