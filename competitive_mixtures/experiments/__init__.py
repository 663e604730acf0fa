"""Experiments that run several configurations and collect their results."""
