"""The spec format: the model, loading (TOML, Markdown, the project constitution, composition),
source locations, conditions and validation."""
