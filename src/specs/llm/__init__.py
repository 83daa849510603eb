"""Cognitive steps: LLM providers, the agent loop and its tools, MCP servers, prompts, budget,
cache, the judge of ``verify_with = "llm"`` and research phases."""
