"""The names and bounds a config may use: plain tuples, importing nothing."""

# The registries that build these (strategies.STRATEGIES, ratio.KINDS, ...) import
# JAX model code; their names are written here so that a config loads without it
# (tests/test_config.py checks that both agree).
STRATEGIES = ("competitive", "bagging", "single", "boosting")
STEP_BUDGETS = ("epochs", "equal")
INIT_SPLITS = ("uniform", "kmeans", "latent")
SEQUENTIAL_FAMILIES = ("vae", "conv_vae")
RATIO_KINDS = ("discriminator", "kernel", "multiclass", "posterior", "elbo", "exact")
TRAINED_RATIO_KINDS = ("discriminator", "multiclass", "posterior")
STACK_MODES = ("auto", "vmap", "sequential")
BETA_SCHEDULES = ("constant", "1/t", "one")
BOOSTING_WEIGHTINGS = ("star", "dagger")
# The MLP VAE decoder's log-variance bounds (models/vae.py).
LOG_VAR_MIN, LOG_VAR_MAX = -8.0, 4.0
MODEL_FAMILIES = ("vae", "kmeans", "conv_vae", "gan", "avb", "gram")
# Families with networks for both vector and image data.
ANY_DATA_FAMILIES = ("gan", "avb", "gram")
GAN_LOSSES = ("ns", "wgan_gp", "wgan_clip")
GAN_OPTIMIZERS = ("adam", "rmsprop")
DATASETS = ("gaussians", "ring", "grid", "mnist_offline", "mnist_files", "mnist", "celeb_a",
            "array", "image_folder", "tfds")
IMAGE_DATASETS = ("mnist_offline", "mnist_files", "mnist", "celeb_a", "image_folder", "tfds")
# Sets whose points may be vectors or images, as their file holds them.
EITHER_DATASETS = ("array",)
LIKELIHOODS = ("bernoulli", "gaussian")
OPTIMIZERS = ("adam", "sgd")
DISC_FEATURES = ("pixels", "latent")
GAUSSIAN_MODES = (3, 5, 9)
# Choosing K needs a log-likelihood bound (the held-out criterion) and an
# estimator with one network (or none) per component, which a split copies.
AUTO_K_FAMILIES = ("vae", "conv_vae", "kmeans")
AUTO_K_RATIOS = ("discriminator", "kernel", "elbo", "exact")
AUTO_K_GAIN_OVER = ("all", "moved")
AUTO_K_REMOVAL_JUDGED_ON = ("removed", "receivers")
