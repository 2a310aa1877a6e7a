"""Placement (pure): offers view, filters with named reasons, scorers, and the gang planner."""
