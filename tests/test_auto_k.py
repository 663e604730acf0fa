"""Choosing K (`auto_k`): the active mask, the moves, and runs that find the number of blobs."""

import inspect
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from competitive_mixtures import assign
from competitive_mixtures import auto_k
from competitive_mixtures import bench
from competitive_mixtures import data as data_lib
from competitive_mixtures import seeding
from competitive_mixtures import sharding
from competitive_mixtures import train
from competitive_mixtures.mixture import Mixture
from competitive_mixtures.state import Stack
from conftest import load_config


def test_inactive_components_win_nothing_and_the_rest_assign_as_alone():
    """Masking components equals assigning with their columns left out."""
    rng = np.random.default_rng(0)
    scores = jnp.asarray(rng.normal(size=(500, 6)), jnp.float32)
    active = np.array([True, False, True, True, False, True])
    masked = assign.assign(scores, 40, active=jnp.asarray(active))
    alone = assign.assign(scores[:, active], 40)
    index = np.flatnonzero(active)
    np.testing.assert_array_equal(np.asarray(masked.owner), index[np.asarray(alone.owner)])
    np.testing.assert_array_equal(np.asarray(masked.count)[active], np.asarray(alone.count))
    assert not np.asarray(masked.count)[~active].any()
    assert not np.asarray(masked.balanced)[~active].any()
    np.testing.assert_array_equal(np.asarray(masked.best)[active], np.asarray(alone.best))


def test_split_in_two_separates_two_blobs_inside_the_mask():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=(100, 2)) + [-10, 0], rng.normal(size=(100, 2)) + [10, 0],
                        rng.normal(size=(50, 2))]).astype(np.float32)
    mask = np.arange(250) < 200
    side = np.asarray(seeding.split_in_two(jax.random.PRNGKey(0), jnp.asarray(x),
                                           jnp.asarray(mask)))
    assert not side[200:].any()
    # One blob on each side, whichever got the second cluster.
    assert {tuple(np.unique(side[:100])), tuple(np.unique(side[100:200]))} == {(True,), (False,)}


def test_copy_component_copies_the_parent_with_noise_on_its_parameters():
    stack = Stack(params={"w": jnp.arange(12.0).reshape(3, 4)},
                  model_state={"s": jnp.arange(3.0)},
                  opt_state=(jnp.arange(3, dtype=jnp.int32), jnp.ones((3, 4))))
    copied = auto_k.copy_component(stack, jnp.int32(0), jnp.int32(2), jax.random.PRNGKey(0),
                                   jnp.float32(0.01))
    w = np.asarray(copied.params["w"])
    np.testing.assert_array_equal(w[:2], np.arange(8.0).reshape(2, 4))
    assert 0 < np.abs(w[2] - np.arange(4.0)).max() < 0.1
    assert float(copied.model_state["s"][2]) == 0.0
    assert int(copied.opt_state[0][2]) == 0


def test_criterion_is_the_mixture_log_likelihood_of_the_active_components():
    rng = np.random.default_rng(2)
    log_lik = rng.normal(size=(50, 4))
    alpha = np.array([0.5, 0.0, 0.3, 0.2])
    active = np.array([True, True, True, False])
    value, per_point, best = auto_k.criterion(log_lik, alpha, active)
    expected = np.log(0.5 * np.exp(log_lik[:, 0]) + 0.3 * np.exp(log_lik[:, 2]))
    np.testing.assert_allclose(per_point, expected, rtol=1e-12)
    assert value == pytest.approx(expected.mean())
    assert set(np.unique(best)) <= {0, 2}


def _search(trial, start_point, start_best, baseline=0.0):
    return {"trial": np.array(trial), "start_point": np.asarray(start_point, np.float64),
            "start_best": np.asarray(start_best), "baseline": baseline}


def test_a_removal_is_judged_on_the_points_it_explained_best():
    """C without the removal counts only the removed component's points as
    changed; per moved point, their mean change is the judged gain."""
    per_point = np.array([-1.0, -2.0, -3.0, -4.0])
    start = np.array([-1.0, -1.5, -3.0, -3.0])
    search = _search([auto_k.REMOVAL, 2, -1, 5, -1], start, [0, 2, 1, 2])
    now = per_point.mean()
    before, paired, concerned = auto_k._without(np.zeros((4, 3)), np.ones(3) / 3,
                                                np.ones(3, bool), search, now, per_point)
    assert not paired and concerned == 0.5
    change = (-2.0 + 1.5) + (-4.0 + 3.0)  # Points 1 and 3, the removed component's.
    assert before == pytest.approx(now - change / 4)
    assert auto_k.judged_gain(now - before, concerned, "all") == pytest.approx(change / 4)
    assert auto_k.judged_gain(now - before, concerned, "moved") == pytest.approx(change / 2)
    assert auto_k.judged_gain(-0.3, 0.0, "moved") == 0.0


def test_a_removal_judged_on_receivers_counts_the_points_of_those_that_took_its_own():
    """With `removal_judged_on='receivers'` the points of the components that
    now explain the removed one's points best are judged too; the points of a
    component that took none of them stay counted as unchanged."""
    log_lik = np.array([[0.0, -9.0, -9.0], [-1.0, -5.0, -9.0], [-9.0, 0.0, -9.0],
                        [-1.0, -6.0, -9.0], [-9.0, -1.0, -9.0]])
    alpha, active = np.array([0.5, 0.5, 0.0]), np.array([True, True, False])
    now, per_point, best = auto_k.criterion(log_lik, alpha, active)
    np.testing.assert_array_equal(best[[1, 3]], [0, 0])  # Component 0 took 2's points.
    start = per_point + np.array([0.5, 1.0, 0.25, 2.0, 4.0])
    search = _search([auto_k.REMOVAL, 2, -1, 5, -1], start, [0, 2, 1, 2, 1])
    before, paired, concerned = auto_k._without(log_lik, alpha, active, search, now,
                                                per_point, best_now=best)
    # Judged on points 0, 1 and 3; the move concerns the removed one's 1 and 3.
    assert not paired and concerned == pytest.approx(0.4)
    assert before == pytest.approx(now + (0.5 + 1.0 + 2.0) / 5)
    removed_only, _, _ = auto_k._without(log_lik, alpha, active, search, now, per_point)
    assert removed_only == pytest.approx(now + (1.0 + 2.0) / 5)


def test_a_split_is_judged_against_its_snapshot_on_the_snapshots_points():
    """A split (parent 0, child 1, snapshot 2) against the mixture with the
    snapshot in place of both: paired, concerning the points the snapshot
    explains best."""
    rng = np.random.default_rng(3)
    log_lik = rng.normal(size=(40, 4))
    log_lik[:10, 2] += 5.0  # The snapshot explains the first 10 points best.
    alpha = np.array([0.3, 0.2, 0.0, 0.5])
    active = np.array([True, True, False, True])
    now, per_point, _ = auto_k.criterion(log_lik, alpha, active)
    search = _search([auto_k.SPLIT, 1, 0, 5, 2], np.zeros(40), np.full(40, -1))
    before, paired, concerned = auto_k._without(log_lik, alpha, active, search, now, per_point)
    expected, _, best = auto_k.criterion(log_lik, np.array([0.0, 0.0, 0.5, 0.5]),
                                         np.array([False, False, True, True]))
    assert paired and before == pytest.approx(expected)
    assert concerned == pytest.approx(np.mean(best == 2)) and concerned >= 0.25


def _kmeans(modes, start, capacity, rounds):
    """The k-means family (Lemma 2) with auto_k on the Gaussian blobs of `modes` modes."""
    c = load_config("synthetic", f"modes={modes},tiny")
    c.model.family, c.ratio.kind = "kmeans", "exact"
    c.balance.min_points = 0
    c.num_components, c.num_rounds = capacity, rounds
    c.auto_k.enabled, c.auto_k.initial_components = True, start
    return c


def _events(workdir) -> list[tuple[int, dict]]:
    """`(round, event)` of every auto_k event in the run's metrics.jsonl, in order."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [(r["round"], e) for r in records for e in r["auto_k"]["events"]]


def _mixture_bound(log_lik, weights, used):
    """Per point log sum_{j used} w_j exp(L_j(x_i)) `[V]`, and each point's best
    component `[V]`, in float64 numpy (written here, not `auto_k.criterion`)."""
    log_lik = np.asarray(log_lik, np.float64)
    used = np.asarray(used, bool)
    joint = np.where(used[None, :], log_lik + np.log(np.where(used, weights, 1.0))[None, :],
                     -np.inf)
    top = joint.max(axis=1)
    return top + np.log(np.exp(joint - top[:, None]).sum(axis=1)), joint.argmax(axis=1)


def _unit_gaussian_log_densities(x, centres):
    """`[V, J]` log N(x_i; mu_j, I): the k-means family's exact log-densities."""
    x, centres = np.asarray(x, np.float64), np.asarray(centres, np.float64)
    sq = np.sum((x[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
    return -0.5 * sq - 0.5 * x.shape[1] * np.log(2 * np.pi)


def _nearest_shares(x, centres):
    """The share of the points `x` nearest to each centre: the mixture weights a
    k-means assignment pass gives them (exact log-densities, no balancing)."""
    owner = _unit_gaussian_log_densities(x, centres).argmax(axis=1)
    return np.bincount(owner, minlength=len(centres)) / len(x)


def _refit(x, centres, iterations=20):
    """k-means (Lloyd's iterations) on the points `x` from `centres` `[J, D]`."""
    x, centres = np.asarray(x, np.float64), np.array(centres, np.float64)
    for _ in range(iterations):
        owner = _unit_gaussian_log_densities(x, centres).argmax(axis=1)
        for j in range(len(centres)):
            if np.any(owner == j):
                centres[j] = x[owner == j].mean(axis=0)
    return centres


def _kmeans_criterion(dataset, validation, centres):
    """C of unit-variance Gaussians at `centres`, weighted by their nearest
    training points (what the assignment pass gives them)."""
    weights = _nearest_shares(dataset.x, centres)
    return _mixture_bound(_unit_gaussian_log_densities(validation, centres), weights,
                          weights > 0)[0].mean()


def _record_steps(monkeypatch) -> list[tuple[dict, dict]]:
    """Records every `auto_k.step` of a run: (its arguments by name, what it returned)."""
    calls = []
    step = auto_k.step
    signature = inspect.signature(step)

    def recorded(*args, **kwargs):
        fields = step(*args, **kwargs)
        calls.append((signature.bind(*args, **kwargs).arguments, fields))
        return fields

    monkeypatch.setattr(auto_k, "step", recorded)
    return calls


def _kept_removal_costs(workdir, calls, dataset, validation) -> list[tuple[int, float]]:
    """`(round, cost)` of every kept removal of a k-means run whose steps `calls`
    recorded, the cost recomputed from the centroids: C when the removal was
    tried (the removed one in) minus C when it was kept (nats per point). The
    logged criteria of both are checked against these."""
    def bound(gen, active):
        centres = np.asarray(gen.params["mu"], np.float64)[np.asarray(active, bool)]
        return _kmeans_criterion(dataset, validation, centres)

    by_round = {int(args["state"].round): (args, fields) for args, fields in calls}
    costs, start = [], None
    for r, e in _events(workdir):
        args, fields = by_round[r]
        if e["event"] == "removal tried":
            # The mixture the removal starts from: the step's output, the removed one in.
            with_it = np.asarray(fields["active"], bool).copy()
            with_it[e["component"]] = True
            start = bound(fields["gen"], with_it)
            assert start == pytest.approx(e["criterion"], abs=1e-3)
        elif e["event"] == "removal kept":
            # The mixture without it, at the parameters the decision saw.
            now = bound(args["gen"], args["state"].active)
            assert now == pytest.approx(e["criterion_with"], abs=1e-3)
            # The logged cost is judged on the points of the removed component and
            # of its receivers; it leaves out the other points, which barely change.
            logged = e["criterion_without"] - e["criterion_with"]
            assert start - now == pytest.approx(logged, abs=0.02), (r, start - now, logged)
            costs.append((r, start - now))
    return costs


@pytest.mark.parametrize("modes,start,capacity", [(3, 1, 6), (3, 6, 6), (9, 12, 12)])
def test_kmeans_family_finds_the_number_of_blobs(modes, start, capacity, tmp_path, monkeypatch):
    """Growing from one component and pruning from too many both end at one
    component per blob (well-separated unit-variance blobs: the k-means model is
    the true one, so a split of one blob or a second centre in it does not pay).

    Checked with the criterion computed here, on the restored run's centroids:
    every component kept is worth more than `removal_price` (no duplicate
    left), the mixture is within `min_gain` of the true blob centres (no blob
    left to split off); and on the centroids of every step: no kept removal
    cost more than `removal_price`."""
    config = _kmeans(modes, start, capacity, rounds=25 if modes == 3 else 40)
    calls = _record_steps(monkeypatch)
    summary = train.train_and_evaluate(config, str(tmp_path))
    assert summary["active_components"] == modes
    assert summary["clustering"]["nmi"] >= 0.95
    events = [e["event"] for _, e in _events(tmp_path)]
    kept = "split kept" if start < modes else "removal kept"
    assert kept in events
    assert os.path.exists(tmp_path / "figures" / "counts.png")

    m = Mixture.load(str(tmp_path))
    config = m.config
    dataset = data_lib.load(config)
    # `data.load` gives the points in the models' space (the same here: no data.shift
    # or data.scale), where the centroids live.
    assert not data_lib.has_scaling(config)
    validation, _, _ = auto_k.split_heldout(config, dataset.heldout_x, dataset.heldout_label)
    active = np.asarray(m.state.active, bool)
    centres = np.asarray(m.state.gen.params["mu"], np.float64)[active]
    log_lik = _unit_gaussian_log_densities(validation, centres)
    # The centroids are what the run scores points with.
    np.testing.assert_allclose(m.log_ratios(validation, space="model")[:, active], log_lik,
                               rtol=1e-5, atol=1e-4)
    alpha = np.asarray(m.alphas, np.float64)[active]
    final = _mixture_bound(log_lik, alpha, alpha > 0)[0].mean()
    assert final == pytest.approx(_kmeans_criterion(dataset, validation, centres), abs=1e-3)

    # (a) Each kept component is worth its price: without it (the others refitted
    # to the training points, as the rounds of a removal's trial would), C falls
    # by more than `removal_price`.
    for j in range(len(centres)):
        rest = _refit(dataset.x, np.delete(centres, j, axis=0))
        without = _kmeans_criterion(dataset, validation, rest)
        assert final - without > config.auto_k.removal_price, (j, final, without)
    # (b) No further split would pay: the true blob centres (the data's own modes,
    # weighted by their shares of the training points) do better by at most `min_gain`.
    truth = _unit_gaussian_log_densities(validation, dataset.centres)
    shares = np.bincount(dataset.label, minlength=modes) / len(dataset.label)
    best = _mixture_bound(truth, shares, shares > 0)[0].mean()
    assert final >= best - config.auto_k.min_gain, (final, best)
    # (c) What each kept removal cost, at the centroids of its trial.
    costs = _kept_removal_costs(tmp_path, calls, dataset, validation)
    assert all(cost <= config.auto_k.removal_price + 0.02 for _, cost in costs), costs


def test_removal_price_bounds_what_a_kept_removal_costs(tmp_path, monkeypatch):
    """With no price the search removes whole blobs (several nats per point on
    the points they explained) and has to split again; at the default price no
    kept removal costs more than it (the test above).

    The cost of each kept removal is recomputed from the centroids the search
    had when it tried the removal and when it kept it."""
    config = _kmeans(3, 6, 6, rounds=14)
    config.auto_k.removal_price = 1e3
    calls = _record_steps(monkeypatch)
    train.train_and_evaluate(config, str(tmp_path))
    dataset = data_lib.load(config)
    validation, _, _ = auto_k.split_heldout(config, dataset.heldout_x, dataset.heldout_label)
    costs = _kept_removal_costs(tmp_path, calls, dataset, validation)
    expensive = [r for r, cost in costs if cost > 1.0]
    assert expensive, costs
    # ... after which the search has to split again.
    assert any(e["event"] == "split kept" and r > expensive[0]
               for r, e in _events(tmp_path)), _events(tmp_path)


def test_a_move_after_an_undone_split_starts_from_the_restored_parent(monkeypatch):
    """Splits that cannot pay (min_gain 1e3) are tried first and undone, each
    restoring its parent; the removal that starts in the same step as the last
    undo records the start bounds of the mixture as restored, recomputed here
    from its parameters (k-means family: exact, noise-free log-densities)."""
    config = _kmeans(3, 2, 6, rounds=5)
    config.auto_k.min_gain = 1e3
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    x = jax.device_put(dataset.x, sharding.replicated(programs.mesh))
    validation, _, _ = auto_k.split_heldout(config, dataset.heldout_x, dataset.heldout_label)
    calls = []
    step = auto_k.step

    def recorded(*args):
        fields = step(*args)
        calls.append((args[5], fields))  # The round's scores, and what the step returned.
        return fields

    monkeypatch.setattr(auto_k, "step", recorded)
    state = train.init_state(config, programs, x)
    state, _ = train.run_round(config, programs, state, x, validation)
    state = state.replace(search=state.search.replace(direction=jnp.int32(auto_k.SPLIT)))
    events = []
    for _ in range(3):
        state, record = train.run_round(config, programs, state, x, validation)
        events.append([e["event"] for e in record["auto_k"]["events"]])
    assert events == [["split tried"], ["split undone", "split tried"],
                      ["split undone", "removal tried"]], events
    scores, fields = calls[-1]
    removed = int(fields["search"].trial[1])
    before = np.asarray(fields["active"]).copy()
    before[removed] = True
    alpha = np.asarray(programs.assigner(scores, jnp.asarray(before))[0].alpha)
    log_lik = auto_k.component_log_likelihoods(config, programs, fields["gen"], validation,
                                               jax.random.PRNGKey(0))
    _, per_point, best = auto_k.criterion(log_lik, alpha, before)
    v = len(validation)
    np.testing.assert_allclose(np.asarray(fields["search"].start_point)[:v], per_point,
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(fields["search"].start_best)[:v], best)


def _tiny_vae(**auto):
    c = load_config("synthetic", "tiny")
    c.num_components, c.num_rounds = 4, 5
    c.auto_k.enabled, c.auto_k.initial_components = True, 2
    c.auto_k.validation_points = 200
    for key, value in auto.items():
        c.auto_k[key] = value
    return c


def test_moved_prices_read_each_decision_per_point_of_the_component_moved(tmp_path,
                                                                         monkeypatch):
    """With `gain_over='moved'` every decision's gain is the change of C over
    the fraction of held-out points it concerns, and the prices apply to it.

    Each decision is recomputed from the parameters the search saw (every
    `auto_k.step` recorded): the bounds of the components on the validation
    points, drawn as the step draws them, and the shares of the assignment pass.
    The prices are set so that the run's first removal (about -0.4 nats per
    held-out point, -1.2 per point of the removed component) and its split
    (+0.37, +0.93 per point of the parent) are each decided the other way when
    read per held-out point."""
    config = _tiny_vae(gain_over="moved", min_gain=0.6, removal_price=0.8)
    config.num_rounds = 7  # The two removals are undone (rounds 1-4), then a split.
    calls = _record_steps(monkeypatch)
    train.train_and_evaluate(config, str(tmp_path))
    assert config.auto_k.removal_judged_on == "receivers"  # The synthetic preset's.

    def bounds(args, active):
        """Per point bound `[V]` and best component of the mixture `active` at the
        parameters and scores a step was given."""
        # The step's own draws of the ELBO: the first of the three keys it splits.
        lik_key = jax.random.split(args["key"], 3)[0]
        log_lik = auto_k.component_log_likelihoods(config, args["programs"], args["gen"],
                                                   args["validation"], lik_key)
        alpha = np.asarray(args["programs"].assigner(args["scores"], jnp.asarray(active))[0].alpha)
        return log_lik, alpha, _mixture_bound(log_lik, alpha, active & (alpha > 0))

    decided, start = [], None
    for args, fields in calls:
        events = args["record"]["auto_k"]["events"]
        trial = np.asarray(args["state"].search.trial)
        for e in events:
            if "gain" not in e:
                continue
            kind, moved, parent, _, snapshot = (int(v) for v in trial)
            assert e["event"].startswith(auto_k.MOVES[kind]) and e["component"] == moved
            active = np.asarray(args["state"].active, bool)
            log_lik, alpha, (now, best_now) = bounds(args, active)
            if kind == auto_k.REMOVAL:
                start_point, start_best = start
                mine = start_best == moved
                # Its receivers' points are judged too; the others count as unchanged.
                judged = mine | np.isin(start_best, best_now[mine])
                without = now.mean() - np.sum(now[judged] - start_point[judged]) / len(now)
                concerned = np.mean(mine)
            else:
                # The snapshot of the parent in place of parent and child.
                before = active.copy()
                before[[parent, moved]], before[snapshot] = False, True
                weights = alpha.copy()
                weights[snapshot] = alpha[parent] + alpha[moved]
                per_point, best = _mixture_bound(log_lik, weights, before & (weights > 0))
                without, concerned = per_point.mean(), np.mean(best == snapshot)
            assert e["criterion_with"] == pytest.approx(now.mean(), abs=1e-6)
            assert e["criterion_without"] == pytest.approx(without, abs=1e-6)
            assert e["concerned"] == pytest.approx(concerned)
            assert 0 < concerned <= 1
            change = now.mean() - without
            gain = change / concerned
            assert e["gain"] == pytest.approx(gain, rel=1e-6, abs=1e-9)
            decided.append((kind, e["event"].endswith("kept"), change, gain))
        for e in events:
            if e["event"] == "removal tried":
                # The mixture it starts from: the step's output, the removed one in.
                with_it = np.asarray(fields["active"], bool).copy()
                with_it[e["component"]] = True
                _, _, start = bounds({**args, "gen": fields["gen"]}, with_it)
                assert start[0].mean() == pytest.approx(e["criterion"], abs=1e-6)

    def rule(kind, gain):
        return gain > config.auto_k.min_gain if kind == auto_k.SPLIT else (
            gain >= -config.auto_k.removal_price)

    assert {kind for kind, *_ in decided} == {auto_k.SPLIT, auto_k.REMOVAL}, decided
    for kind, kept, change, gain in decided:
        assert kept == rule(kind, gain), decided
    # Where it matters: a split and a removal the prices per held-out point of the
    # whole set would have decided the other way.
    for kind in (auto_k.SPLIT, auto_k.REMOVAL):
        assert any(rule(kind, change) != kept for k, kept, change, _ in decided if k == kind), \
            decided


def test_moves_compile_nothing_after_the_first_round():
    """The stacked steps keep their shapes when components come and go: every
    compiled program is traced in the first rounds and never again."""
    # min_gain 0 keeps every split that helps at all: the run grows and undoes.
    config = _tiny_vae(min_gain=0.0)
    config.num_rounds = 6
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    x = jax.device_put(dataset.x, sharding.replicated(programs.mesh))
    validation = dataset.heldout_x[:200]
    state = train.init_state(config, programs, x)
    traces, compiles, active = [], [], []
    for _ in range(config.num_rounds + 1):
        with bench.CompileMonitor() as monitor:
            state, record = train.run_round(config, programs, state, x, validation)
        traces.append(list(bench.program_traces(monitor).values()))
        compiles.append(monitor.count)
        active.append(record["active"])
    assert traces[0] == [1, 1, 1, 1] and traces[1:] == [[0, 0, 0, 0]] * config.num_rounds
    # Round 1 starts the first move and compiles its helpers; later moves reuse them.
    assert compiles[2:] == [0] * (config.num_rounds - 1), compiles
    assert len({tuple(a) for a in active}) > 2, active  # K did change, more than once.


def test_resume_across_a_split_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    """A run stopped in the middle of a split's trial resumes to the same end."""
    config = _tiny_vae()
    config.num_rounds = 8  # Removals are tried first (rounds 1-4), then a split.
    full = str(tmp_path / "full")
    train.train_and_evaluate(config, full)
    with open(os.path.join(full, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    tried = [r["round"] for r in records
             if any(e["event"] == "split tried" for e in r["auto_k"]["events"])]
    assert tried, "the run never tried a split"

    stopped = str(tmp_path / "stopped")
    run_round = train.run_round

    def interrupted(config, programs, state, *args):
        if int(state.round) == tried[0] + 1:  # The trial's round: stop before it.
            raise KeyboardInterrupt
        return run_round(config, programs, state, *args)

    monkeypatch.setattr(train, "run_round", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, stopped)
    monkeypatch.setattr(train, "run_round", run_round)
    train.train_and_evaluate(config, stopped)

    def final(workdir):
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            last = [json.loads(line) for line in f][-1]
        with np.load(os.path.join(workdir, "assignments.npz")) as z:
            return last, z["assignment"]

    (end, owner), (resumed_end, resumed_owner) = final(full), final(stopped)
    np.testing.assert_array_equal(resumed_owner, owner)
    assert resumed_end["active"] == end["active"]
    assert resumed_end["auto_k"] == end["auto_k"]
    chex.assert_trees_all_close(resumed_end["counts"], end["counts"])


def test_event_marks_name_the_kept_moves():
    records = [{"round": 1, "auto_k": {"events": [{"event": "split tried", "component": 2,
                                                   "parent": 0}]}},
               {"round": 2, "auto_k": {"events": [
                   {"event": "split kept", "component": 2, "parent": 0},
                   {"event": "removal tried", "component": 1}]}},
               {"round": 3, "auto_k": {"events": [
                   {"event": "removal undone", "component": 1, "parent": -1},
                   {"event": "pruned", "component": 3, "share": 0.001}]}}]
    assert auto_k.event_marks(records) == [(2, "split 0->2"), (3, "pruned 3")]


def test_split_heldout_keeps_the_rest_for_evaluation():
    config = _tiny_vae(validation_points=300)
    x, label = np.arange(1000.0)[:, None], np.arange(1000)
    validation, rest, rest_label = auto_k.split_heldout(config, x, label)
    assert len(validation) == 300 and len(rest) == 700
    assert not set(validation[:, 0]) & set(rest[:, 0])
    np.testing.assert_array_equal(rest[:, 0], rest_label)
    assert np.all(np.diff(rest_label) > 0)
    # Never more than half the held-out set.
    assert len(auto_k.split_heldout(config, x[:100], label[:100])[0]) == 50


def test_equal_step_budget_shares_the_points_among_the_active_components():
    """With `step_budget='equal'` a component's steps are those of N/K points for
    the K active components; an inactive one (empty set) takes none."""
    config = _tiny_vae()
    config.step_budget, config.batch_size = "equal", 10
    sizes = np.array([100, 0, 50, 0])
    np.testing.assert_array_equal(train.m_step_counts(config, sizes, 2, 1, 200, 2), [20, 0, 20, 0])
    np.testing.assert_array_equal(train.m_step_counts(config, sizes, 2, 1, 200), [10, 0, 10, 0])
