"""Tests of the pure placement ring: Resources, filters, scorers, the gang and cycle planners."""
