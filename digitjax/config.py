"""The one config schema every experiment shares, and its validation.

Every experiment file in configs/ starts from `get_config()` here and changes a few
fields, so every field a run can have is listed (and documented) in one place, and
`--config.a.b=value` overrides always hit a known, typed field. A model family's own
fields (flowers_cnn's filters, ...) are declared with the family (digitjax.models.FAMILIES)
and join config.model through `choose_model()`; any other family refuses them. What a
family's own fields may hold, the family checks itself (its Family.check).

digitjax.validation checks a config against this schema before any data is read or
anything is compiled: a typo or an out-of-range value costs the user one clear message,
not a traceback ten minutes in.
"""
from __future__ import annotations

import json

import ml_collections
from ml_collections import config_dict

MONITORS = ("val_loss", "val_accuracy")
PLACEMENTS = ("auto", "device", "host")
LOSSES = ("cross_entropy", "binary_cross_entropy", "mse")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")
ON_NONFINITE = ("stop", "skip")


def get_config() -> ml_collections.ConfigDict:
  """Defaults: Keras's where the reports are silent (see ../shared/REPORTS.md)."""
  c = ml_collections.ConfigDict()
  c.name = "default"  # names the default workdir runs/<name>
  c.seed = 0  # parameters, dropout, augmentation and data order all derive from it
  c.num_seeds = 1  # >1: train seeds seed..seed+num_seeds-1 side by side, vmapped in one jit
  c.dataset = _dataset()
  c.model = _model()
  c.optimizer = _optimizer()
  c.reduce_on_plateau = _reduce_on_plateau()
  c.early_stopping = _early_stopping()
  c.augment = _augment()

  c.monitor = "val_loss"  # picks the best checkpoint; drives plateau and early stopping
  c.loss = "cross_entropy"  # cross_entropy | binary_cross_entropy | mse
  # Standalone Keras 2.2's categorical_crossentropy clipped probabilities to [1e-7, 1-1e-7]
  # before the log (no gradient outside); 0 = the exact log-softmax of tf.keras 2 / Keras 3.
  c.loss_clip = 0.0
  c.batch_size = 128
  c.eval_batch_size = 1000
  c.num_epochs = 10
  c.checkpoint_every_steps = 0  # 0 = at the end of every epoch only
  # >1: save every k epochs (and at the end, at an early stop, on SIGTERM/SIGINT), for
  # runs of hundreds of short epochs where a save per epoch costs as much as training
  c.checkpoint_every_epochs = 1
  c.log_every_steps = 100  # how often the host checks metrics (and non-finite loss)
  # Training steps per jitted call (one lax.scan), bit-exact for any value: 0 = auto, the
  # fastest on CPU and GPU alike (digitjax.trainer.DEFAULT_STEPS_PER_DISPATCH: 100,
  # experiments/BENCH.md). SIGTERM is answered between blocks: set 1 for seconds-long steps.
  c.steps_per_dispatch = 0
  c.on_nonfinite = "stop"  # stop | skip (skip leaves the state as it was for that step)
  return c


def _dataset() -> ml_collections.ConfigDict:
  """config.dataset: which images, which splits, where they live."""
  g = ml_collections.ConfigDict()
  g.name = "mnist"  # a TFDS name: mnist, fashion_mnist, cifar10, tf_flowers
  g.data_dir = config_dict.placeholder(str)  # else $TFDS_DATA_DIR, else TFDS default
  g.download = True  # let TFDS download when the data is not prepared
  # Where the uint8 training split lives. device: on the accelerator, each step gathers
  # its batch there (no host work per step). host: in host memory, each block of steps'
  # batches is gathered on the host and copied over while the block before it trains,
  # for splits that do not fit in device memory. auto: device when the split takes at most half the device's memory.
  # The numbers are the same either way (tested).
  g.placement = "auto"
  g.train_split = "train"
  g.test_split = "test"
  # Carved from the train split, never from test. 0 (and no validation_split): no
  # validation set, every training image trains; the loop then validates nothing, the
  # last epoch is the best checkpoint, and early stopping and plateau are refused.
  g.validation_fraction = 0.1
  # A TFDS split string read as the validation set instead of carving validation_fraction,
  # e.g. "train[80%:]" with train_split "train[:80%]" for tf_flowers (it has no test split);
  # max_test_examples caps it as it caps the test split.
  g.validation_split = config_dict.placeholder(str)
  g.split_seed = 0  # fixed so seeds vary the model, not which images validate
  g.max_train_examples = 0  # 0 = all; a small real subset for tests and smoke runs
  g.max_test_examples = 0
  g.image_size = 0  # 0 = native size; resize (square) otherwise, e.g. 150 for flowers
  return g


def _model() -> ml_collections.ConfigDict:
  """config.model: the fields every model family shares."""
  g = ml_collections.ConfigDict()
  g.name = "cnn_bn"  # see digitjax.models.FAMILIES
  g.hidden_units = (512,)  # dense layer widths for the MLP families
  g.hidden_activation = "relu"  # relu | sigmoid
  g.output_activation = "softmax"  # how the loss reads the logits: softmax | sigmoid
  g.dropout = 0.0  # dropout after hidden dense layers (MLP families)
  g.l2 = 0.0  # kernel L2 factor: l2 * sum(w^2) added to the loss, as Keras does
  g.conv_impl = "matmul"  # matmul (k*k shifted slices + one matmul) | xla (lax.conv) | mixed
  # Initial parameters: keras (each layer's Keras initialiser) | torch (PyTorch's Conv2d
  # and Linear defaults: kernels and biases uniform in +-1/sqrt(fan_in); models.inits)
  g.init = "keras"
  # A family's own fields (flowers_cnn's filters, cnn3_v1's paddings, GoogLeNet's
  # aux_weight, ...) are declared with it, in digitjax.models.FAMILIES: choose_model()
  # adds them, and validate() refuses them on any other family.
  return g


def _optimizer() -> ml_collections.ConfigDict:
  """config.optimizer: Keras's optimizers at Keras's defaults."""
  g = ml_collections.ConfigDict()
  g.name = "rmsprop"  # sgd | momentum | nesterov | rmsprop | adam | adadelta | adagrad
  g.learning_rate = config_dict.placeholder(float)  # None = Keras default
  g.momentum = 0.0  # for sgd; momentum/nesterov default to 0.9
  g.schedule = "constant"  # constant | cosine | warmup_cosine | onecycle
  g.warmup_epochs = 0
  # schedule "onecycle" only (PyTorch's OneCycleLR, cosine, at its defaults): from
  # lr/div_factor up to lr over the first pct_start of the run, then down to
  # lr/div_factor/final_div_factor at its last step.
  g.pct_start = 0.3
  g.div_factor = 25.0
  g.final_div_factor = 1e4
  # Keras's names and defaults: Adam's beta_1 and beta_2 (adam only); epsilon for rmsprop,
  # adam, adadelta and adagrad (Keras's 1e-7 for all four; PyTorch's Adam uses 1e-8).
  g.beta_1 = 0.9
  g.beta_2 = 0.999
  g.epsilon = 1e-7
  # Where RMSprop adds epsilon, which decides how far weights with tiny gradients move:
  # True divides by sqrt(v + eps) (tf.keras 2.x, Keras 3, optax); False by sqrt(v) + eps
  # (standalone Keras <= 2.3, so report B's 2019 runs). With eps 1e-7 inside the root the
  # step is damped wherever the gradient's RMS is below sqrt(1e-7) = 3.2e-4.
  g.eps_in_sqrt = True
  return g


def _reduce_on_plateau() -> ml_collections.ConfigDict:
  """Keras's ReduceLROnPlateau, stepped once per epoch on config.monitor."""
  g = ml_collections.ConfigDict()
  g.enabled = False
  g.factor = 0.1
  g.patience = 10
  g.min_delta = 1e-4
  g.min_lr = 0.0
  return g


def _early_stopping() -> ml_collections.ConfigDict:
  """Keras's EarlyStopping on config.monitor. The best checkpoint is always kept, and test
  figures always come from it, so restore_best_weights is what digitjax always does.
  With early stopping on, "best" is Keras's too: the last epoch that improved the
  monitor by more than min_delta (an epoch better by less is not restored)."""
  g = ml_collections.ConfigDict()
  g.enabled = False
  g.patience = 5
  g.min_delta = 0.0
  return g


def _augment() -> ml_collections.ConfigDict:
  """config.augment: Keras's GaussianNoise and ImageDataGenerator's random transforms."""
  g = ml_collections.ConfigDict()
  g.noise_std = 0.0  # additive gaussian noise on [0,1] training images
  # ImageDataGenerator's random affine transforms (0 = off), 'nearest' fill as Keras:
  g.rotation_range = 0.0  # degrees: angle uniform in [-r, r]
  g.zoom_range = 0.0  # z: zoom factors (x and y drawn apart) uniform in [1-z, 1+z]
  g.width_shift_range = 0.0  # fraction of the width: shift uniform in [-w, w]
  g.height_shift_range = 0.0  # fraction of the height
  g.horizontal_flip = False  # mirror left-right with probability 1/2
  g.vertical_flip = False  # mirror top-bottom with probability 1/2
  return g


def choose_model(c: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """Sets config.model.name and adds that family's own fields at their defaults
  (digitjax.models.FAMILIES), so a config file or --config.model.FIELD can set them."""
  from digitjax import models

  c.model.name = name
  for key, value in models.own_fields(name).items():
    c.model[key] = value
  return c


# config.json's key for digitjax.provenance's record, beside the config's own fields.
PROVENANCE = "provenance"


def schema() -> dict:
  """The shared fields and their defaults, flattened: {'model.name': 'cnn_bn', ...}."""
  return flatten(json.loads(get_config().to_json_best_effort()))


def defaults() -> dict:
  """schema() and every family's own fields at their defaults, flattened."""
  from digitjax import models

  own = {f"model.{k}": v for family in models.FAMILIES.values()
         for k, v in family.fields.items()}
  return {**flatten(json.loads(json.dumps(own))), **schema()}


def flat(config: ml_collections.ConfigDict) -> dict:
  """Every field of config by its dotted name: {'model.name': 'cnn_bn', ...} (JSON values)."""
  return flatten(json.loads(config.to_json_best_effort()))


def flatten(d, prefix=""):
  out = {}
  for k, v in (d or {}).items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[prefix + k] = v
  return out
