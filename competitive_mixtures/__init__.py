"""Competitive training of mixtures of independent deep generative models."""
