"""Choosing K during the competition (`config.auto_k`): moves tried, kept by a held-out test.

The run holds a stack of `num_components` components, the most it may use,
and an active mask (`MixtureState.active`): the compiled steps never see K
change. An inactive component owns no point, takes no step and has mixture
weight 0. After each round's assignment pass:

  pruning   a component whose share stays below `prune_share` for
            `prune_rounds` consecutive rounds is deactivated at once; its
            points go to their best remaining component (the usual argmax);
  trials    one move at a time is tried and judged `trial_rounds` rounds
            later by the held-out criterion C of the mixture with the move
            against C without it, both at the parameters of that moment:
              removal  component j is deactivated and its points go to their
                       best remaining component. Judged on the held-out points
                       j explained best when it left and (`removal_judged_on=
                       'receivers'`) those of the components that took j's
                       points: their bound now against theirs then (the other
                       points counted as unchanged). Kept if C drops by at
                       most `removal_price`;
              split    component j is copied into a free slot (parameters plus
                       Gaussian noise of std `split_noise`, its optimizer
                       state and its discriminator as they are), and j's
                       points are divided between the copies by 2-means; a
                       second free slot keeps j as it was, untrained, which is
                       the mixture without the move (and what j is restored to
                       if the split is undone). Kept if C rises by more than
                       `min_gain`.
            Both leave the round-to-round noise of every component the move
            does not touch out of the comparison; it is as large as the
            effects measured (VAEs on 2-D data: C moves by about 0.05 nats
            from round to round). With no second free slot a split is judged
            against C when it started instead.
            An undone move is not tried again until some move is kept.
            Removals go smallest share first, splits worst explained first
            (the lowest mean C over the held-out points the component explains
            best); the kind of the last kept move is tried first. No move
            starts right after a pruning, an undone removal, or an undone
            split that could not restore the parent (points just handed back
            to components fitted without them, whose C would make a poor
            start), nor one whose decision would fall in the last round, which
            trains the components the search chose. The search ends when,
            since the last kept move, every active component's removal and
            split have been tried (or no free slot is left).

The criterion is the mixture's log-likelihood bound per held-out point,

    C = mean_i log sum_{j active} alpha_j exp(L_j(x_i)),

with L_j the exact log-density (k-means family) or the ELBO averaged over
`elbo_samples` latent draws (VAE families; the ELBO bounds log p_j from
below, so C bounds the mixture's held-out log-likelihood), and alpha the
shares of the training points. `min_gain` is the price of a component in
nats per point: the smaller mixture wins unless the larger one is better by
more. With `gain_over='moved'` both prices are per held-out point of the
component moved instead: a move's change of C is divided by the fraction
of the held-out points it concerns (`judged_gain`). C is measured on
held-out points the end-of-run evaluation does not use (`split_heldout`).
Everything the search knows is in `MixtureState.search`, so a run resumes
in the middle of a trial.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from competitive_mixtures import assign
from competitive_mixtures import points as points_lib
from competitive_mixtures import seeding
from competitive_mixtures.state import Search
from competitive_mixtures.ratio.base import RoundPrograms

NONE, SPLIT, REMOVAL = 0, 1, 2
MOVES = {SPLIT: "split", REMOVAL: "removal"}
# Row of `Search.tried` for each kind of move.
_ROW = {SPLIT: 0, REMOVAL: 1}


def initial_count(config: ml_collections.ConfigDict) -> int:
    """How many components are active when the run starts."""
    if not config.auto_k.enabled:
        return config.num_components
    return config.auto_k.initial_components or config.num_components


def initial_active(config: ml_collections.ConfigDict) -> jax.Array:
    """`[K]` bool: the first `initial_count` components."""
    return jnp.arange(config.num_components) < initial_count(config)


def initial_search(config: ml_collections.ConfigDict) -> Search:
    k, v = config.num_components, config.auto_k.validation_points
    return Search(low_rounds=jnp.zeros((k,), jnp.int32), tried=jnp.zeros((2, k), bool),
                  trial=jnp.array([NONE, -1, -1, -1, -1], jnp.int32),
                  baseline=jnp.zeros((), jnp.float32),
                  start_point=jnp.zeros((v,), jnp.float32),
                  start_best=jnp.full((v,), -1, jnp.int32), direction=jnp.int32(REMOVAL))


def split_heldout(config: ml_collections.ConfigDict, x: np.ndarray,
                  label: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(validation points, the other held-out points, their labels).

    The validation points, `auto_k.validation_points` of them and at most half
    the held-out set, are drawn at random (seeded by `data.seed`); the
    evaluation keeps the rest, in their order.
    """
    num = min(config.auto_k.validation_points, len(x) // 2)
    perm = np.random.default_rng(config.data.seed).permutation(len(x))
    rest = np.sort(perm[num:])
    return x[np.sort(perm[:num])], x[rest], label[rest]


def component_log_likelihoods(config: ml_collections.ConfigDict, programs: RoundPrograms, gen,
                              x: np.ndarray, key: jax.Array) -> np.ndarray:
    """`[V, K]` float64 L_j(x_i): exact log-densities, or ELBOs averaged over draws."""
    draws = 1 if programs.exact else config.auto_k.elbo_samples
    total = 0.0
    for d in range(draws):
        total = total + np.asarray(programs.likelihood.log_ratios(
            None, gen, x, jax.random.fold_in(key, d)), np.float64)
    return total / draws


def criterion(log_lik: np.ndarray, alpha: np.ndarray,
              active: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """C, and per point its log-likelihood bound `[V]` and best component `[V]`."""
    used = active & (alpha > 0)
    weight = np.where(used, np.log(np.where(used, alpha, 1.0)), -np.inf)
    joint = log_lik + weight[None, :]
    top = np.max(joint, axis=1, keepdims=True)
    per_point = top[:, 0] + np.log(np.sum(np.exp(joint - top), axis=1))
    return float(np.mean(per_point)), per_point, np.argmax(joint, axis=1)


@jax.jit
def copy_component(stack, parent: jax.Array, child: jax.Array, key: jax.Array,
                   noise_std: jax.Array):
    """`stack` with component `child` a copy of `parent`; its parameters get noise."""
    def copy(leaf):
        return leaf.at[child].set(leaf[parent])

    leaves, treedef = jax.tree.flatten(stack.params)
    keys = jax.random.split(key, max(len(leaves), 1))
    params = [leaf.at[child].set(
        leaf[parent] + noise_std * jax.random.normal(k, leaf.shape[1:], leaf.dtype))
        if jnp.issubdtype(leaf.dtype, jnp.inexact) else copy(leaf)
        for leaf, k in zip(leaves, keys)]
    return stack.replace(params=jax.tree.unflatten(treedef, params),
                         model_state=jax.tree.map(copy, stack.model_state),
                         opt_state=jax.tree.map(copy, stack.opt_state))


@functools.partial(jax.jit, static_argnames=("num_components", "min_points"))
def _split_assignment(result: assign.Assignment, side: jax.Array, parent: jax.Array,
                      child: jax.Array, active: jax.Array, num_components: int,
                      min_points: int) -> assign.Assignment:
    """`result` with the parent's points on `side` moved to the child; the child
    inherits the parent's best points for load balancing."""
    owner = jnp.where(side, child, result.owner).astype(jnp.int32)
    count = assign.counts(owner, num_components)
    best = result.best.at[child].set(result.best[parent])
    return assign.Assignment(owner=owner, count=count, best=best,
                             balanced=(count < min_points) & active)


def _candidates(search: dict, active: np.ndarray, alpha: np.ndarray, per_point: np.ndarray,
                best: np.ndarray) -> list[tuple[int, int]]:
    """The untried moves `(kind, component)`, in the order they are tried."""
    k = active.shape[0]
    removals = []
    if active.sum() > 1:
        removals = sorted((j for j in range(k) if active[j] and not search["tried"][1, j]),
                          key=lambda j: (alpha[j], j))
    splits = []
    if not active.all():
        explained = {j: (np.mean(per_point[best == j]) if np.any(best == j) else np.inf)
                     for j in range(k)}
        splits = sorted((j for j in range(k)
                         if active[j] and alpha[j] > 0 and not search["tried"][0, j]),
                        key=lambda j: (explained[j], j))
    moves = {SPLIT: [(SPLIT, j) for j in splits], REMOVAL: [(REMOVAL, j) for j in removals]}
    first = search["direction"]
    return moves[first] + moves[SPLIT if first == REMOVAL else REMOVAL]


def _without(log_lik: np.ndarray, alpha: np.ndarray, active: np.ndarray, search: dict,
             now: float, per_point: np.ndarray,
             best_now: np.ndarray | None = None) -> tuple[float, bool, float]:
    """(C of the mixture without the move on trial, whether it is paired, the
    fraction of the held-out points the move concerns).

    `now`, `per_point`: C and the per-point bounds of the mixture with the move
    (`criterion` of the other arguments); `best_now`, its third output (the
    component that explains each point best), to judge a removal on its
    receivers too (None: on the removed component's points alone).

    A split is judged against its parent as it was (the snapshot), at the
    current parameters of every other component: paired. A removal is judged
    on the held-out points the removed component explained best when it
    left, and with `best_now` on those of the components that now explain
    these points best (they trained on them, which may cost them on their
    own points): their bound now against their bound then, the other points
    counted as unchanged (so the rest of the mixture's round-to-round noise
    stays out). A split without a snapshot is judged against C when it
    started.

    The points a move concerns are those the removed component, or the split's
    parent, explained best in the mixture without the move.
    """
    kind, moved, parent, _, snapshot = (int(v) for v in search["trial"])
    start_best = search["start_best"][:len(per_point)]
    if kind == REMOVAL:
        mine = judged = start_best == moved
        if best_now is not None:
            # The components that took the removed one's points were changed
            # by the move too: their own points are judged as well.
            judged = np.isin(start_best, np.unique(best_now[mine])) | mine
        change = np.sum(per_point[judged] - search["start_point"][:len(per_point)][judged])
        return now - change / len(per_point), False, float(np.mean(mine))
    if snapshot < 0:
        return search["baseline"], False, float(np.mean(start_best == parent))
    alpha, active = alpha.copy(), active.copy()
    alpha[snapshot] = alpha[parent] + alpha[moved]
    alpha[[parent, moved]] = 0.0
    active[[parent, moved]] = False
    active[snapshot] = True
    before, _, best = criterion(log_lik, alpha, active)
    return before, True, float(np.mean(best == snapshot))


def judged_gain(gain: float, concerned: float, gain_over: str) -> float:
    """A move's gain in nats per held-out point (`gain`, C with minus C without)
    as the prices read it: per held-out point (`gain_over='all'`), or per
    held-out point the move concerns (`'moved'`; 0 if it concerns none)."""
    if gain_over == "all":
        return gain
    return gain / concerned if concerned > 0 else 0.0


def step(config: ml_collections.ConfigDict, programs: RoundPrograms, state, gen, disc,
         scores: jax.Array, x: points_lib.Data, validation: np.ndarray, key: jax.Array,
         record: dict) -> dict:
    """The search's work at the end of round `state.round`, after the estimator's fit.

    Decides the move on trial, prunes, starts the next move and assigns the
    points with `scores` `[N, K]` among the components then active. Returns
    the state's new fields (gen, disc, owner, alpha, sets, active, search);
    `record["auto_k"]` gets the criterion, the active count and the events.
    """
    c = config.auto_k
    r = int(state.round)
    k = config.num_components
    active = np.asarray(state.active).copy()
    search = {"low_rounds": np.asarray(state.search.low_rounds).copy(),
              "tried": np.asarray(state.search.tried).copy(),
              "trial": np.asarray(state.search.trial).copy(),
              "baseline": float(state.search.baseline),
              "start_point": np.asarray(state.search.start_point, np.float64).copy(),
              "start_best": np.asarray(state.search.start_best).copy(),
              "direction": int(state.search.direction)}
    lik_key, split_key, noise_key = jax.random.split(key, 3)
    log_lik = component_log_likelihoods(config, programs, gen, validation, lik_key)
    result, sets = programs.assigner(scores, jnp.asarray(active))
    value, per_point, best_now = criterion(log_lik, np.asarray(result.alpha), active)
    events: list[dict] = []

    kind, moved, parent, decided_at, snapshot = (int(v) for v in search["trial"])
    # An undo that leaves components fitted without points they get back.
    unsettled = False
    if kind != NONE and r >= decided_at:
        before, paired, concerned = _without(log_lik, np.asarray(result.alpha), active,
                                             search, value, per_point,
                                             best_now if c.removal_judged_on == "receivers"
                                             else None)
        gain = judged_gain(value - before, concerned, c.gain_over)
        keep = gain > c.min_gain if kind == SPLIT else gain >= -c.removal_price
        events.append({"event": f"{MOVES[kind]} {'kept' if keep else 'undone'}",
                       "component": moved, "parent": parent, "criterion_without": before,
                       "criterion_with": value, "paired": paired, "concerned": concerned,
                       "gain": gain})
        if keep:
            search["tried"][:] = False
            search["direction"] = kind
        else:
            active[moved] = kind == REMOVAL
            search["tried"][_ROW[kind], parent if kind == SPLIT else moved] = True
            if kind == SPLIT and snapshot >= 0:  # The parent as it was before the split.
                gen = copy_component(gen, jnp.int32(snapshot), jnp.int32(parent), noise_key,
                                     jnp.float32(0.0))
                # The next move starts from the restored parent's bounds, not
                # from those of the copy that trained on half its points.
                log_lik[:, parent] = log_lik[:, snapshot]
            # The undone removal's neighbours were fitted with its points.
            unsettled = kind == REMOVAL or snapshot < 0
            result, sets = programs.assigner(scores, jnp.asarray(active))
        search["trial"][:] = (NONE, -1, -1, -1, -1)
        kind = NONE

    alpha = np.asarray(result.alpha)
    low = np.where(active & (alpha < c.prune_share), search["low_rounds"] + 1, 0)
    if kind != NONE:  # The components on trial are judged by the trial.
        low[[j for j in (moved, parent) if j >= 0]] = 0
    prune = active & (low >= c.prune_rounds)
    if prune.any() and prune.sum() < active.sum():
        for j in np.flatnonzero(prune):
            events.append({"event": "pruned", "component": int(j), "share": float(alpha[j])})
        active &= ~prune
        low[prune] = 0
        search["tried"][:] = False
        unsettled = True
        result, sets = programs.assigner(scores, jnp.asarray(active))
    search["low_rounds"] = low

    # A move starts from a settled state, and its decision falls before the
    # last round, which trains the components the search chose.
    if (kind == NONE and not unsettled and r >= c.first_round
            and r + c.trial_rounds < config.num_rounds):
        now, per_point, best = criterion(log_lik, np.asarray(result.alpha), active)
        moves = _candidates(search, active, np.asarray(result.alpha), per_point, best)
        if moves:
            kind, j = moves[0]
            search["baseline"] = now
            search["start_point"][:] = 0.0
            search["start_point"][:len(per_point)] = per_point
            search["start_best"][:] = -1
            search["start_best"][:len(best)] = best
            if kind == REMOVAL:
                active[j] = False
                result, sets = programs.assigner(scores, jnp.asarray(active))
                search["trial"][:] = (REMOVAL, j, -1, r + c.trial_rounds, -1)
                events.append({"event": "removal tried", "component": j, "criterion": now})
            else:
                free = np.flatnonzero(~active)
                child = int(free[0])
                snapshot = int(free[1]) if len(free) > 1 else -1
                if snapshot >= 0:
                    gen = copy_component(gen, jnp.int32(j), jnp.int32(snapshot), noise_key,
                                         jnp.float32(0.0))
                gen = copy_component(gen, jnp.int32(j), jnp.int32(child), noise_key,
                                     jnp.float32(c.split_noise))
                if jax.tree.leaves(disc.params):
                    disc = copy_component(disc, jnp.int32(j), jnp.int32(child), noise_key,
                                          jnp.float32(0.0))
                side = seeding.split_in_two(split_key, points_lib.full(x), result.owner == j)
                active[child] = True
                result = _split_assignment(result, side, jnp.int32(j), jnp.int32(child),
                                           jnp.asarray(active), k, config.balance.min_points)
                sets = assign.training_sets(result)
                search["trial"][:] = (SPLIT, child, j, r + c.trial_rounds, snapshot)
                events.append({"event": "split tried", "component": child, "parent": j,
                               "criterion": now})

    record["auto_k"] = {"criterion": value, "active": int(active.sum()), "events": events}
    new_search = Search(low_rounds=jnp.asarray(search["low_rounds"], jnp.int32),
                        tried=jnp.asarray(search["tried"]),
                        trial=jnp.asarray(search["trial"], jnp.int32),
                        baseline=jnp.float32(search["baseline"]),
                        start_point=jnp.asarray(search["start_point"], jnp.float32),
                        start_best=jnp.asarray(search["start_best"], jnp.int32),
                        direction=jnp.int32(search["direction"]))
    return {"gen": gen, "disc": disc, "owner": result.owner, "alpha": result.alpha,
            "sets": sets, "active": jnp.asarray(active), "search": new_search}


def event_marks(records: list[dict]) -> list[tuple[int, str]]:
    """`(round, label)` of every kept move and pruning, for `figures/counts.png`."""
    marks = []
    for record in records:
        for event in record.get("auto_k", {}).get("events", []):
            name = event["event"]
            if name == "split kept":
                marks.append((record["round"], f"split {event['parent']}->{event['component']}"))
            elif name == "removal kept":
                marks.append((record["round"], f"removed {event['component']}"))
            elif name == "pruned":
                marks.append((record["round"], f"pruned {event['component']}"))
    return marks
