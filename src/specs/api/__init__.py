"""The library API: what the CLI, the dashboard and ``specs mcp`` call (docs/api.md)."""
