"""Evaluation metrics for generative mixtures."""
