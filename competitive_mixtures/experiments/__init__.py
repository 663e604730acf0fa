"""Experiments that run several configurations and collect their results.

Each driver runs as `python -m competitive_mixtures.experiments.NAME` and
defines its flags only then (`define_flags`), so any of them import together:

  table1.py           the paper's Table 1: competitive VAEs vs bagging, one VAE-150, AdaGAN
  ratios.py           the density-ratio estimators and AdaGAN boosting on the 2-D sets
  mode_coverage.py    a competitive mixture vs one model of its size on ring, grid, 5 modes
  digits.py           the paper's MNIST comparison (Table 2) against KMeans, bagging, one VAE
  capacity.py         3 DCGANs against 1 on the offline digits (paper Table 4)
  k_curve.py          a preset's held-out bound against K, with auto_k's picks
  kmeans_baseline.py  a finished run's clustering against k-means on the raw data
  read_ratios.py      a finished run's generators read by fresh density-ratio estimators
  latent_fit.py       a VAE run's FID from reconstructions, prior codes and fitted codes

common.py holds what they share (configs per seed, runs, tables, verdicts, figures).
"""
