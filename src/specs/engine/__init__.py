"""The engine: run state, rules (policy), checks, gates and the run loop."""
