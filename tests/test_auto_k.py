"""Choosing K (`auto_k`): the active mask, the moves, and runs that find the number of blobs."""

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


def _kept_removal_costs(workdir) -> list[float]:
    """How much each kept removal lowered the criterion (nats per point)."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        events = [e for line in f for e in json.loads(line)["auto_k"]["events"]]
    return [e["criterion_without"] - e["criterion_with"] for e in events
            if e["event"] == "removal kept"]


@pytest.mark.parametrize("modes,start,capacity", [(3, 1, 6), (3, 6, 6), (9, 12, 12)])
def test_kmeans_family_finds_the_number_of_blobs(modes, start, capacity, tmp_path):
    """Growing from one component and pruning from too many both end at one
    component per blob (well-separated unit-variance blobs: the k-means model is
    the true one, so a split of one blob or a second centre in it does not pay)."""
    config = _kmeans(modes, start, capacity, rounds=25 if modes == 3 else 40)
    summary = train.train_and_evaluate(config, str(tmp_path))
    assert summary["active_components"] == modes
    assert summary["clustering"]["nmi"] >= 0.95
    with open(tmp_path / "metrics.jsonl") as f:
        events = [e["event"] for line in f for e in json.loads(line)["auto_k"]["events"]]
    kept = "split kept" if start < modes else "removal kept"
    assert kept in events
    assert all(cost <= config.auto_k.removal_price + 1e-6
               for cost in _kept_removal_costs(tmp_path))
    assert os.path.exists(tmp_path / "figures" / "counts.png")


def test_removal_price_bounds_what_a_kept_removal_costs(tmp_path):
    """With no price the search removes whole blobs (several nats per point on
    the points they explained) and has to split again; at the default price no
    kept removal costs more than 0.05 (the test above)."""
    config = _kmeans(3, 6, 6, rounds=14)
    config.auto_k.removal_price = 1e3
    train.train_and_evaluate(config, str(tmp_path))
    assert max(_kept_removal_costs(tmp_path)) > 1.0


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


def test_moved_prices_read_each_decision_per_point_of_the_component_moved(tmp_path):
    """With `gain_over='moved'` every decision's gain is the change of C over
    the fraction of held-out points it concerns, and the prices apply to it."""
    config = _tiny_vae(gain_over="moved", min_gain=0.2, removal_price=0.2)
    train.train_and_evaluate(config, str(tmp_path))
    with open(tmp_path / "metrics.jsonl") as f:
        decided = [e for line in f for e in json.loads(line)["auto_k"]["events"]
                   if "gain" in e]
    assert decided
    for e in decided:
        change = e["criterion_with"] - e["criterion_without"]
        assert 0 <= e["concerned"] <= 1
        expected = change / e["concerned"] if e["concerned"] > 0 else 0.0
        assert e["gain"] == pytest.approx(expected, rel=1e-6, abs=1e-9)
        kept = e["event"].endswith("kept")
        if e["event"].startswith("split"):
            assert kept == (e["gain"] > 0.2)
        else:
            assert kept == (e["gain"] >= -0.2)


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
