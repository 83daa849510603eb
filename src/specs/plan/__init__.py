"""The plan: a spec's steps as a dependency graph (phases, critical path), and its rendering."""
