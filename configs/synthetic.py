"""2-D Gaussian mixtures with the paper's skew (Locatello et al. 2018, Sec. 5.1, App. C).

Usage: --config=configs/synthetic.py[:ARGS], ARGS a comma-separated list of
  modes=3|5|9   which dataset (K defaults to the number of modes), default 3;
  data=NAME     gaussians (default), ring (8 modes) or grid (25 modes);
  k=INT         number of components;
  strategy=NAME competitive (default), bagging, single (sets k=1) or boosting;
  ratio=KIND    density-ratio estimator: discriminator (default), kernel, multiclass;
  hidden=INT    units in each of the two hidden layers of the VAE (default 50);
  vae150        the paper's larger single model: strategy=single, hidden=150;
  auto=INT      choose K during the run (auto_k), starting from INT components,
                at most k (default 15, or the modes + 5 when more);
  paper         appendix C's settings and schedule (below);
  long          with paper and modes=9: 100 iterations instead of 10;
  tiny          a seconds-long run for tests.
Example: --config=configs/synthetic.py:modes=9,paper

Both presets share the models: VAEs with two hidden layers of 50 units (150
for vae150) in encoder and decoder, latent 5, Gaussian encoder and decoder,
Adam(0.005, beta1=0.5); discriminators of the same shape.

Decoder variance (the paper is silent; applied to every method alike). The
decoder's log-variance is capped at 0: its noise is at most as broad as one
mode of the data (std 1 before the skew). Uncapped, a VAE's easiest optimum
is to ignore its latent code and emit one broad Gaussian (posterior
collapse): one VAE-150 on the 5-mode set then scores a held-out KDE
log-likelihood of -6.34 and draws one blob over all modes; capped it scores
-5.10 and draws the modes, with bridges between them.

Quick default (minutes on a 2-core CPU): 16,000 points; each component starts
on one k-means cluster of the points (`init_split='kmeans'`, see
competitive_mixtures/seeding.py), pre-trains 5 epochs on it, then 15 rounds
of 4 epochs; discriminators 2 epochs a round, kept across rounds. With the
paper's uniform split the K models start as near-copies of each other and
the first assignment hands every component pieces of several modes; the
hard assignment then leaves such states slowly or never (measured: final
NMI 0.61-1.0 over seeds at 3 modes, 0.79-1.0 at 5 modes even after 60
rounds). k-means++ seeding is k-means' own answer to where its centres start,
and with the model of Lemma 2 this procedure is k-means.

paper: appendix C. 64,000 points; batch 32; Adam 0.005, beta1 0.5 for VAEs and
discriminators; uniform random pre-training split; every iteration trains
each VAE 10 epochs on its split and the discriminators 2 epochs on the whole
data, re-initialised every iteration. Pre-training epochs / iterations:
3 modes 10 / 100, 5 modes 100 / 130, 9 modes 1000 / 10 (100 with `long`).
Choices where the appendix is silent:
  * the classifier epochs at 9 modes: 2, as for 3 and 5 modes;
  * load balancing: a component that wins fewer than 1,000 points (1/64 of
    the data, about half the smallest 9-mode mode) trains on its 1,000
    best-scoring points; its mixture weight stays its true share;
  * the decoder variance cap above;
  * baselines: the bag trains 100 epochs (as the paper says of it); VAE-150
    trains 100 epochs on all points (the paper gives no number).

auto_k (the paper has no such search): a removal is judged on the held-out
points of the removed component and of the components that took its points
(`auto_k.removal_judged_on='receivers'`; the base default is 'removed'). It
counts what absorbing a mode costs the receivers on their own points, and it
assumes that their bound on those points no longer rises by itself from one
round to the next: true of these VAEs after their first rounds, not of the
offline digits' VAEs, still improving each round, where removals judged so
look like gains of up to 5.6 nats per point (the searches' results:
docs/results/choosing_k.md).
"""

from competitive_mixtures import config as config_lib

# Appendix C: (pre-training epochs, iterations) per number of modes.
PAPER_SCHEDULE = {3: (10, 100), 5: (100, 130), 9: (1000, 10)}
PAPER_LONG_ITERATIONS = 100
# Epochs of the paper's baselines (bag, VAE-150), trained without rounds.
PAPER_BASELINE_EPOCHS = 100
# Rounds of an auto_k run: every move tried costs a round, an undone one a
# second (see competitive_mixtures/auto_k.py).
AUTO_ROUNDS = 40


def get_config(arg=None):
    args = config_lib.parse_arg(
        arg, {"modes", "data", "k", "strategy", "ratio", "hidden", "vae150", "paper", "long",
              "tiny", "auto"},
        "configs/synthetic.py")
    if args.get("vae150"):
        args.update(strategy="single", hidden="150")
    c = config_lib.base_config()
    c.data.name = args.get("data", "gaussians")
    c.data.modes = int(args.get("modes", 3))
    # Modes of each set: the ring has 8, the grid 5 x 5.
    num_modes = {"ring": 8, "grid": 25}.get(c.data.name, c.data.modes)
    c.strategy = args.get("strategy", "competitive")
    c.ratio.kind = args.get("ratio", "discriminator")
    c.num_components = 1 if c.strategy == "single" else int(args.get("k", num_modes))
    width = int(args.get("hidden", 50))
    c.model.hidden = (width, width)
    c.model.max_log_var = 0.0

    c.data.num_points = 16000
    c.init_split = "kmeans"
    c.pretrain_epochs = 5
    c.num_rounds = 15
    c.epochs_per_round = 4
    c.disc.epochs = 2
    c.disc.reinit_each_round = False
    c.batch_size = 64
    c.disc.batch_size = 64
    c.balance.min_points = 200

    if args.get("long") and not (args.get("paper") and c.data.modes == 9):
        raise ValueError("configs/synthetic.py: 'long' goes with 'paper,modes=9'")
    if args.get("paper"):
        c.data.num_points = 64000
        c.init_split = "uniform"
        c.batch_size = 32
        c.disc.batch_size = 32
        c.model.learning_rate = c.disc.learning_rate = 0.005
        c.model.b1 = c.disc.b1 = 0.5
        c.epochs_per_round = 10
        c.disc.epochs = 2
        c.disc.reinit_each_round = True
        c.balance.min_points = 1000
        c.pretrain_epochs, c.num_rounds = PAPER_SCHEDULE.get(c.data.modes, (10, 100))
        if args.get("long"):
            c.num_rounds = PAPER_LONG_ITERATIONS
        if c.strategy in ("bagging", "single"):
            # Trained once, never reassigned: the whole budget is pre-training.
            c.pretrain_epochs, c.num_rounds = PAPER_BASELINE_EPOCHS, 0
    # With auto_k, a removal is judged on its receivers' points too (see above).
    c.auto_k.removal_judged_on = "receivers"
    if args.get("auto"):
        c.auto_k.enabled = True
        c.auto_k.initial_components = int(args["auto"])
        c.num_components = int(args.get("k", max(15, num_modes + 5)))
        c.num_rounds = AUTO_ROUNDS
    if args.get("tiny"):
        config_lib.shrink(c, num_points=3000, num_heldout=1000, rounds=2, pretrain_epochs=2,
                          epochs_per_round=2, batch_size=32, min_points=50, steps_per_chunk=64,
                          eval_samples=1000)
    return c
