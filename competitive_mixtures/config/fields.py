"""Every field a run may set (`base_config`), grouped by concern, with quick 2-D defaults."""

from __future__ import annotations

import ml_collections

from competitive_mixtures.config.choices import LOG_VAR_MAX


def base_config() -> ml_collections.ConfigDict:
    """Every field a run may set, with quick 2-D defaults."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_components = 3
    c.strategy = "competitive"
    # Rounds after pre-training; each is M-step -> discriminator fit -> assignment.
    c.num_rounds = 5
    c.pretrain_epochs = 5
    # The first split of the points, on which the components pre-train
    # (competitive strategy; see seeding.py): 'uniform' (the paper's random
    # split), 'kmeans' (k-means++ clusters of the points, one per component) or
    # 'latent' (the VAE families: one network of the components' architecture
    # trains init_epochs epochs on all the points; k-means++ clusters of its
    # latent means, and every component starts from its weights; see
    # latent_split.py).
    c.init_split = "uniform"
    c.init_epochs = 10
    c.epochs_per_round = 2
    # M-step budget of a round: 'epochs' (the paper: epochs_per_round passes
    # over the component's own points, so the budget grows with its share) or
    # 'equal' (every component the steps of epochs_per_round passes over N/K
    # points, whatever its share).
    c.step_budget = "epochs"
    # Points per component per step (global over devices).
    c.batch_size = 32
    # Steps fused into one compiled scan; the host syncs once per chunk.
    c.steps_per_chunk = 250
    # Compile each chunk as straight-line code (no loop): faster for conv
    # models on CPU, where loop bodies run convolutions slowly; keep chunks small.
    c.unroll_steps = False
    # How stacked steps run the K components (M-step of VAE families,
    # discriminator fit, sampling, scoring): 'vmap' (one batched program),
    # 'sequential' (K copies side by side in one compiled program, one step
    # per call) or 'auto': sequential for images on CPU, where a vmapped
    # convolution is a slow grouped convolution, vmap elsewhere.
    c.stack_mode = "auto"
    # Sequential steps: at most this many components per compiled call (the
    # largest divisor of K up to it; 0 = all K in one call). Compilation time
    # grows with the components of one call (about 7 s each for the MNIST conv
    # VAE step on a 2-core CPU) and a call computes its components' steps even
    # when some are done; K in one call ran 1.0-1.2x faster than one at a time.
    c.stack_group = 1

    c.data = ml_collections.ConfigDict()
    c.data.name = "gaussians"
    c.data.modes = 3
    # Training points: synthetic sets draw this many; image sets keep a
    # subsample of this size (0 = all).
    c.data.num_points = 64000
    c.data.num_heldout = 10000
    c.data.seed = 0
    # Image data: tensorflow-datasets directories ("" = tfds defaults) and size
    # (CelebA, image folders and tfds sets other than MNIST are resized to
    # image_size x image_size; 0 keeps an image folder's or tfds set's size).
    c.data.data_dir = ""
    c.data.manual_dir = ""
    c.data.image_size = 64
    # A user's own data (data/own.py): the .npy/.npz file (name='array') or the
    # folder of images (name='image_folder'); a tfds image set (name='tfds').
    c.data.path = ""
    c.data.tfds_name = ""
    # Vector points are scaled into the models' space as (x - shift) * scale
    # (shift: one value per dimension, or () for none); configs/own.py sets
    # both from the data, and `Mixture` maps back to the user's units.
    c.data.shift = ()
    c.data.scale = 1.0

    c.model = ml_collections.ConfigDict()
    c.model.family = "vae"
    # MLP models (vae): hidden layer widths.
    c.model.hidden = (50, 50)
    c.model.latent = 5
    # Convolutional VAE (conv_vae): encoder / decoder channels, square kernel,
    # decoder likelihood, batch norm (epsilon 1e-5, momentum 0.9).
    c.model.channels = (8, 16, 32, 64)
    c.model.decoder_channels = (64, 32, 16)
    c.model.kernel = 4
    c.model.likelihood = "bernoulli"
    c.model.batch_norm = True
    # Sample x ~ p(x|z) (True) or the decoder mean (False).
    c.model.sample_noise = True
    # MLP VAE: the decoder's log-variance is clipped to [LOG_VAR_MIN, max_log_var].
    c.model.max_log_var = LOG_VAR_MAX
    c.model.learning_rate = 0.005
    c.model.b1 = 0.5
    c.model.b2 = 0.999

    c.gan = ml_collections.ConfigDict()
    # GAN components (model.family='gan'): the generator uses model.hidden (MLP)
    # or model.kernel/batch_norm (conv), model.latent and model's optimizer
    # settings; each component's own critic is set here.
    # 'ns' (non-saturating), 'wgan_gp' (Wasserstein with gradient penalty) or
    # 'wgan_clip' (Wasserstein with critic weights clipped to [-clip, clip]).
    c.gan.loss = "ns"
    # Critic updates per generator update, each on its own real batch.
    c.gan.critic_steps = 1
    c.gan.gp_weight = 10.0
    c.gan.clip = 0.01
    # Optimizer of generator and critic: 'adam' (model.b1/b2 and critic_b1/b2)
    # or 'rmsprop' (the original WGAN's), each at its learning rate.
    c.gan.optimizer = "adam"
    c.gan.spectral_norm = True
    # MLP critic for vector data.
    c.gan.critic_hidden = (128, 128)
    # Conv nets for images: the widest layer's channels (DCGAN: 512 at 64x64).
    c.gan.filters = 64
    c.gan.critic_learning_rate = 2e-4
    c.gan.critic_b1 = 0.5
    c.gan.critic_b2 = 0.999
    # Samples (for assignment, evaluation and pictures) come from an exponential
    # moving average of the generator's weights with this decay per generator
    # update (0: the live weights). The critic always trains against the live
    # generator. A conv generator's batch statistics stay the live ones.
    c.gan.generator_ema = 0.0

    c.avb = ml_collections.ConfigDict()
    # Adversarial Variational Bayes (model.family='avb'): encoder and decoder
    # are MLPs with model.hidden (on flattened images too); the adversary
    # T(x, z) is an MLP with these layers.
    c.avb.adversary_hidden = (128, 128)
    c.avb.adversary_learning_rate = 1e-3

    c.gram = ml_collections.ConfigDict()
    # GRaM (model.family='gram'): the generator is that of a GAN (model.hidden,
    # or gan.filters without batch norm for images); the projection f maps to
    # projection_dim outputs (MLP layers for vectors, stride-2 convs for images).
    c.gram.projection_dim = 8
    c.gram.projection_hidden = (64, 64)
    c.gram.projection_channels = (16, 32)
    c.gram.projection_learning_rate = 1e-3
    # Ridge of the kernel ratio estimate.
    c.gram.eps = 1e-3

    c.disc = ml_collections.ConfigDict()
    # MLP discriminator for vector data; conv channels and kernel for images.
    c.disc.hidden = (50, 50)
    c.disc.channels = (64, 128, 256)
    c.disc.kernel = 4
    c.disc.optimizer = "adam"
    c.disc.learning_rate = 0.005
    c.disc.b1 = 0.5
    c.disc.b2 = 0.999
    # Passes over the N data points per fit; a fraction fits on fewer draws.
    c.disc.epochs = 2.0
    c.disc.batch_size = 32
    c.disc.reinit_each_round = True
    # Images: binarise the real images the discriminators see (afresh at every
    # training draw, at grey level 0.5 when scoring) and show them Bernoulli
    # draws x ~ p(x|z) as samples, to compare like with like whatever
    # model.sample_noise says (which then only sets what `sample` returns).
    c.disc.binarize = False
    # Images: std (pixels) of a fixed Gaussian blur every discriminator input
    # (data, samples, scored points) passes first; 0 = none. The ratio is
    # then that of the blurred images' densities, which fine detail (sharp
    # data against a VAE's smooth decoder means) no longer dominates.
    c.disc.input_blur = 0.0
    # Vector data, binary discriminators: std of fresh Gaussian noise added to
    # every real point and sample the discriminators train on (not to the scored
    # points); 0 = none. The ratio is then that of the densities smoothed at
    # this scale, which a component's spread within a mode no longer dominates.
    # With disc.features='latent' the noise goes on the latent means.
    c.disc.input_noise = 0.0
    # Images, ratio.kind='discriminator': what the discriminators read. 'pixels'
    # (conv discriminators of disc.channels) or 'latent': an MLP of disc.hidden
    # on the latent means of a fixed encoder, the one init_split='latent' trains
    # on all the points (conv VAE components; models/discriminator.py LatentDiscriminator).
    # The ratio is then that of the densities of the latent means.
    c.disc.features = "pixels"
    # Independently initialised copies of every discriminator (or classifier),
    # fitted alike; a point's log ratio is their mean (ratio/ensemble.py).
    c.disc.ensemble = 1

    c.bagging = ml_collections.ConfigDict()
    # Bags drawn with replacement (N // K points each) instead of a disjoint split.
    c.bagging.bootstrap = False

    c.boosting = ml_collections.ConfigDict()
    # AdaGAN (strategy='boosting'): component t trains on data drawn with the
    # weights of boosting.py, then alpha <- (1 - beta_t) alpha + beta_t e_t.
    # beta schedule: 'constant' (boosting.beta), '1/t' (uniform mixture) or
    # 'one' (beta = 1: each new component replaces the mixture; the theory's limit).
    c.boosting.beta_schedule = "constant"
    c.boosting.beta = 0.5
    # Data weights: 'star' (AdaGAN's lambda*) or 'dagger' (its lambda-dagger variant).
    c.boosting.weights = "star"

    c.ratio = ml_collections.ConfigDict()
    # Density-ratio estimator of the assignment pass (and of boosting's weights):
    # 'discriminator' (K binary, config.disc), 'kernel' (kernel mean matching),
    # 'multiclass' (one (K+1)-way classifier shaped and trained like config.disc),
    # 'posterior' (one K-way classifier of the components' samples, no data class)
    # 'elbo' (VAE families: each component's ELBO, see ratio/elbo.py) or 'exact'
    # (model.family='kmeans': its exact log-likelihood, see ratio/exact.py).
    c.ratio.kind = "discriminator"
    c.ratio.kernel = ml_collections.ConfigDict()
    # Samples drawn from each component per assignment pass.
    c.ratio.kernel.samples = 2048
    # Ridge: r = (N/n) (K_dd + N * eps * I)^-1 K_dm 1.
    c.ratio.kernel.eps = 1e-3
    # Gaussian kernel width as a multiple of the median distance between data points.
    c.ratio.kernel.width = 1.0
    # Exact solve up to this many data points; Nystrom approximation beyond.
    c.ratio.kernel.exact_max = 4096
    c.ratio.kernel.landmarks = 1024

    c.balance = ml_collections.ConfigDict()
    # A component that wins fewer points trains on its `min_points` best-scoring points.
    c.balance.min_points = 200

    c.assign = ml_collections.ConfigDict()
    # Points scored per call in the assignment pass.
    c.assign.batch_size = 16384
    # Score with the K discriminators one after another (lax.map) instead of
    # vmapped: far less memory for conv discriminators on CPU.
    c.assign.sequential_components = False

    c.auto_k = ml_collections.ConfigDict()
    # Choosing K during the competition (auto_k.py): `num_components` is then
    # the most components the run may hold (the stacked K axis never changes
    # size), of which `initial_components` start (0 = all). After each round a
    # move is tried: removing a component or splitting one in two; the move is
    # kept only if the held-out criterion (the mixture's log-likelihood bound
    # on `validation_points` held-out points, nats per point) is better by
    # more than `min_gain` (a split) or worse by at most `min_gain` (a
    # removal) after `trial_rounds` rounds; otherwise it is undone.
    c.auto_k.enabled = False
    c.auto_k.initial_components = 0
    c.auto_k.min_gain = 0.05
    # The most C may drop for a removal to be kept (nats per point); below
    # `min_gain` makes removing harder than splitting (hysteresis).
    c.auto_k.removal_price = 0.05
    # What the two prices are per: 'all' held-out points (a move's change of
    # C), or the held-out points the 'moved' component explained best (the
    # same change divided by their fraction), which prices a move on a small
    # component as one on a large component.
    c.auto_k.gain_over = "all"
    # The held-out points a removal is judged on: those the 'removed' component
    # explained best, or those and the points of the components that took its
    # points ('receivers'), whose training on them is part of the move. The
    # latter counts any rise of the receivers' bound over the trial round as
    # the removal's gain, so it needs components whose bound has settled
    # (configs/synthetic.py uses it; the offline digits' VAEs have not settled).
    c.auto_k.removal_judged_on = "removed"
    c.auto_k.trial_rounds = 1
    # The first round at whose end a move may start (round 0 is pre-training).
    c.auto_k.first_round = 1
    # A component whose share of the points stays below `prune_share` for
    # `prune_rounds` consecutive rounds is removed at once (no trial).
    c.auto_k.prune_share = 0.01
    c.auto_k.prune_rounds = 2
    # Held-out points kept aside for the criterion (at most half the held-out
    # set); the evaluation uses the rest.
    c.auto_k.validation_points = 2000
    # Latent draws averaged per point in the VAE families' ELBO.
    c.auto_k.elbo_samples = 4
    # Std of the Gaussian noise added to the copied parameters of a split.
    c.auto_k.split_noise = 0.01

    c.eval = ml_collections.ConfigDict()
    # Model samples for the end-of-run KDE log-likelihood and the figures.
    c.eval.num_samples = 10000

    c.checkpoint = ml_collections.ConfigDict()
    # Newest round checkpoints kept (>= 1).
    c.checkpoint.max_to_keep = 3
    # Seconds between checkpoints inside a round's M-step (the generators and
    # the steps taken, in WORKDIR/m_step_checkpoints), so a stopped run loses at
    # most this much of a long round such as pre-training; 0: none.
    c.checkpoint.m_step_every_s = 600.0

    c.divergence = ml_collections.ConfigDict()
    # A component with a non-finite loss or parameters is re-initialised. The
    # run stops (exit code 3, the last good checkpoint kept) when all
    # components diverge in one round, or one component in this many
    # consecutive rounds.
    c.divergence.max_consecutive_resets = 3

    c.log = ml_collections.ConfigDict()
    # TensorBoard summaries in WORKDIR/tensorboard every round: every number of
    # metrics.jsonl and a picture of every component's samples (needs the
    # 'tensorboard' extra; see tensorboard_log.py).
    c.log.tensorboard = False
    # A jax.profiler trace of one round (round 1, or round 0 when it is the
    # only one) in WORKDIR/profile, for TensorBoard's profile plugin or Perfetto.
    c.profile = False
    return c
