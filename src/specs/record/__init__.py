"""Projections of a run's events: the progress file, the notepad, the console view."""
