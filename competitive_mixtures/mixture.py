"""A trained run as a Python object: sample it, and give any point its component.

    from competitive_mixtures import Mixture
    m = Mixture.load("runs/synthetic")
    x, component = m.sample(1000, seed=0)
    owner = m.predict(points)            # c(x) = argmax_j log P_j(x), as the assignment pass
    m.alphas, m.num_components, m.config

`Mixture.load` is the one way the tools (`sample`, `evaluate`, `predict`) read
a run. It only reads: nothing in the workdir is created, renamed or written.
A missing or damaged file ends in one `errors.UserError` that names the file
and what to do (exit code 2 in the tools).

The assignment of a point x (assign eq. 2-3) compares its log density ratios
`log r_j(x)` after each component's normaliser over the training set,
`log Z_j = logsumexp_i log r_j(x_i)`. The normalisers of a run's estimator
are computed once, on the training points its config names, and then serve
every call of `predict`. Estimators whose scores are log-likelihoods (the
ELBO ratio, the k-means family's exact one) are compared as they are.

Points and samples are in the user's units. A run on scaled vector points
(`data.shift`, `data.scale`, set by `configs/own.py`) keeps its models in the
scaled space; `space="model"` reads and returns points there instead (the
run's own files, such as `heldout.npz`, are in that space).
"""

from __future__ import annotations

import dataclasses

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from competitive_mixtures import data as data_lib
from competitive_mixtures import errors
from competitive_mixtures import ratio as ratio_lib
from competitive_mixtures import sampling
from competitive_mixtures import restore
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.data import own as own_data

# The two spaces points may be given in (see the module docstring).
SPACES = ("user", "model")


class InputError(errors.UserError, ValueError):
    """Points given to a mixture that it cannot score (wrong shape, type or values)."""


@dataclasses.dataclass
class Mixture:
    """A restored run: its config, compiled programs and newest state.

    Attributes:
      workdir: the run directory.
      config: the run's resolved config.
      programs: its models and compiled steps (`programs.Programs`).
      state: its newest `MixtureState`.
      data_shape: the shape of one point.
    """

    workdir: str
    config: ml_collections.ConfigDict
    programs: object
    state: object
    data_shape: tuple[int, ...]
    # Computed on first use: the dataset normaliser and the ELBO scorer.
    _log_normaliser: np.ndarray | None = None
    _elbo_scores: object = None

    @classmethod
    def load(cls, workdir: str) -> "Mixture":
        """The run in `workdir` at its newest checkpoint (read only).

        Raises `workdir.RunFileError` (a missing or damaged `heldout.npz` or
        `assignments.npz`), `errors.WorkdirError` (a garbled `config.json`) or
        `workdir.RunNotFoundError` (no run, or no finished round).
        """
        config, programs, state = restore.restore_run(workdir)
        shape = workdir_lib.read_npz(workdir, "heldout.npz", ("x",))["x"].shape[1:]
        return cls(workdir, config, programs, state, tuple(shape))

    # -- what the run is ----------------------------------------------------------

    @property
    def num_components(self) -> int:
        return int(self.config.num_components)

    @property
    def alphas(self) -> np.ndarray:
        """`[K]` float32 mixture weights (a component's share of the training points)."""
        return np.asarray(self.state.alpha, np.float32)

    @property
    def summary(self) -> dict:
        """The run's `summary.json` (written when training ends)."""
        return workdir_lib.read_run_json(self.workdir, "summary.json",
                                         "it is written when training ends; rerun the "
                                         "training command to finish the run and write it")

    @property
    def history(self) -> list[dict]:
        """One record per finished round, from `metrics.jsonl` (garbled lines dropped)."""
        path = epath.Path(self.workdir, workdir_lib.METRICS)
        if not path.exists():
            raise workdir_lib.RunFileError(
                f"{path} is missing: it holds one line per round; rerun the training command "
                "to write the rounds from the next one on.")
        try:
            return workdir_lib.Workdir(self.workdir, lead=False).read_metrics(
                int(self.state.round))
        except UnicodeDecodeError as error:
            raise workdir_lib.RunFileError(
                f"{path} is damaged ({error}); move it aside and rerun the training "
                "command.") from None

    # -- sampling -------------------------------------------------------------------

    def sample(self, num_samples: int, seed: int = 0,
               space: str = "user") -> tuple[np.ndarray, np.ndarray]:
        """Mixture samples: `x` `[n, *data_shape]` float32 (images in [0, 1]) and the
        `component` `[n]` int32 each came from (j ~ Categorical(alpha))."""
        _check_space(space)
        x, component = sampling.draw_samples(self.programs.gen_model, self.state.gen,
                                             self.state.alpha, jax.random.PRNGKey(seed),
                                             num_samples)
        if space == "user":
            x = data_lib.to_user_space(x, self.config)
        return x, component

    # -- scoring points ---------------------------------------------------------------

    def check_points(self, x, space: str = "user") -> np.ndarray:
        """`x` as an array the run's networks take (in the model's space), or InputError
        saying what is wrong."""
        _check_space(space)
        x = np.asarray(x)
        if x.ndim == len(self.data_shape) and tuple(x.shape) == self.data_shape:
            x = x[None]
        if tuple(x.shape[1:]) != self.data_shape:
            raise InputError(f"points of shape {tuple(x.shape[1:])} (array {x.shape}); this "
                             f"run's points have shape {self.data_shape}")
        if x.shape[0] == 0:
            raise InputError("no points given")
        if x.dtype == np.uint8:
            return x
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise InputError(f"points of dtype {x.dtype}; expected numbers")
        x = x.astype(np.float32)
        bad, first = own_data.nonfinite_rows(x)
        if bad:
            raise InputError(f"{bad} of the {len(x)} points hold NaN or inf (the first at "
                             f"row {first})")
        return data_lib.to_model_space(x, self.config) if space == "user" else x

    def log_ratios(self, x, seed: int = 0, space: str = "user") -> np.ndarray:
        """`[N, K]` float32: the run's estimate of log dP_j/dP_X at every point (before the
        dataset normaliser). `seed` only matters for estimators that draw noise (ELBO)."""
        x = self.check_points(x, space)
        ratio = self.programs.ratio
        return np.asarray(ratio.log_ratios(self.state.disc, self.state.gen, x,
                                           jax.random.PRNGKey(seed)), np.float32)

    @property
    def normalises(self) -> bool:
        """Whether the assignment compares ratios after the dataset normaliser (eq. 2)."""
        return bool(self.programs.ratio.normalise)

    def log_normaliser(self) -> np.ndarray:
        """`[K]`: log Z_j = logsumexp over the training points of log r_j (eq. 2), from the
        training points the run's config names (computed once); zeros for estimators
        compared without it."""
        if self._log_normaliser is None:
            if not self.normalises:
                self._log_normaliser = np.zeros(self.num_components, np.float32)
            else:
                logging.info("scoring the run's training points for the dataset normaliser")
                dataset = data_lib.load(self.config)
                scores = self.log_ratios(dataset.x, space="model")
                self._log_normaliser = np.asarray(
                    jax.nn.logsumexp(jnp.asarray(scores, jnp.float32), axis=0), np.float32)
        return self._log_normaliser

    def owners(self, log_ratio: np.ndarray) -> np.ndarray:
        """`[N]` int32 owners of points whose `log_ratios` are `log_ratio` `[N, K]`: the
        argmax over the components that take part (`auto_k`) of the log ratio after the
        dataset normaliser, log P_j(x) (ties to the lowest index)."""
        scores = np.asarray(log_ratio) - self.log_normaliser()[None, :]
        active = np.asarray(self.state.active, bool)
        return np.argmax(np.where(active[None, :], scores, -np.inf), axis=1).astype(np.int32)

    def check_assigns(self) -> None:
        """InputError unless the run gives new points components: a competitive run whose
        estimator scores one point at a time."""
        if not self.programs.strategy.reassigns:
            raise InputError(f"a {self.config.strategy!r} run has no assignment pass: its "
                             "components do not compete for points, so they give none an "
                             "owner. Use a competitive run.")
        if self.config.ratio.kind == "kernel":
            raise InputError("ratio.kind='kernel' solves for the ratios of the points it is "
                             "given together; it gives no ratio of a new point on its own")

    def predict(self, x, seed: int = 0, space: str = "user") -> np.ndarray:
        """`[N]` int32: each point's component (`owners` of its log ratios), as the
        assignment pass gives the training points theirs."""
        self.check_assigns()
        return self.owners(self.log_ratios(x, seed, space))

    @property
    def has_elbo(self) -> bool:
        return bool(getattr(self.programs.gen_model, "has_elbo", False))

    def elbo(self, x, seed: int = 0, space: str = "user") -> np.ndarray:
        """`[N, K]` float32: every component's one-sample ELBO of every point (VAE families;
        of the scaled points, when the run scales them)."""
        if not self.has_elbo:
            raise InputError(f"model.family={self.config.model.family!r} has no ELBO")
        x = self.check_points(x, space)
        if self._elbo_scores is None:
            self._elbo_scores = ratio_lib.make_likelihood(self.config, self.programs.gen_model,
                                                          self.data_shape, self.programs.mesh)
        return np.asarray(self._elbo_scores.log_ratios(None, self.state.gen, x,
                                                       jax.random.PRNGKey(seed)), np.float32)


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
