"""Competitive training of mixtures of independent deep generative models.

    from competitive_mixtures import Mixture
    m = Mixture.load("runs/synthetic")      # a trained run (read only)
    x, component = m.sample(1000, seed=0)   # mixture samples and their components
    owner = m.predict(points)               # each point's component, as the assignment pass
"""


def __getattr__(name: str):
    # Imported on first use: the config files and the tools that need no model
    # import this package without loading JAX.
    if name == "Mixture":
        from competitive_mixtures.mixture import Mixture  # pylint: disable=import-outside-toplevel
        return Mixture
    raise AttributeError(f"module 'competitive_mixtures' has no attribute {name!r}")
