"""MNIST to 99% in one epoch: tuomaso/train_mnist_fast's recipe, as a config like any other.

  python -m digitjax.main --config=configs/speedrun_mnist.py
  python -m experiments.perf.speedrun --config=configs/speedrun_mnist.py --seeds 10

digitjax.main trains it as it trains every config (one epoch, no validation, the test
figures from its last epoch). experiments.perf.speedrun times it the way such a recipe's
time is quoted: the data read and placed once, the trainer's programs compiled once
apart, then each seed timed from its init to its test accuracy on the host.

Reaches 99.00 +- 0.11% test accuracy over seeds 0-9 (7 of 10 at or above 99.0%; the
PyTorch script reports 99.04%). Side by side with the former stand-alone speedrun
program (its own init, schedule and one-program scan; 99.04 +- 0.09%, 6 of 10), old and
new alternated on the shared 2-core CPU in three runs of seeds 0-9 a side: median 19.7
s against 19.5 s per seed under load, new/old 1.01 (runs: 1.02, 0.89, 0.99), level
within the noise; compilation 11 s apart (was 12.5 s). The former took 8.0-8.8 s per
seed on an idle machine. experiments/BENCH.md ("The speedrun is a config") has the
runs and the commands. The convolutions are digitjax's "mixed" form (lax.conv forward,
its own backward), which XLA:CPU runs fast inside the trainer's scan.

The recipe, as the PyTorch script has it, in ordinary fields: the whole training set
(no validation: dataset.validation_fraction = 0), pixels scaled to [0, 1] and normalised
with MNIST's mean and std (0.1307, 0.3081) by the model's input Rescaling
(model.input_scale / input_offset); Conv 24 5x5 -> MP 2 -> ReLU -> Conv 32 3x3 -> MP 2
-> ReLU -> D 256 -> ReLU -> D 10 (digitjax.models.speedrun_cnn) with PyTorch's default
initialisation (model.init = "torch": kernels and biases uniform in +-1/sqrt(fan_in));
batch 256, one epoch; Adam (beta_1 0.7, beta_2 0.9, epsilon 1e-8) with PyTorch's
OneCycleLR to a peak of 0.01 (optimizer.schedule = "onecycle" at its defaults: 30%
cosine warm-up from peak/25, cosine down to peak/25/1e4), no momentum cycling; softmax
cross-entropy; no augmentation. The epoch is one compiled call (steps_per_dispatch
above its 234 steps).

Where it differs from the former experiments.perf.speedrun program: digitjax's trainer, as
for every config, draws each epoch's order from the seed (the former read TFDS's fixed
order) and drops the last partial batch, so the epoch is 234 steps of 256 (59,904
images; the former trained a 235th batch of 96), and the one-cycle schedule spans those
234 steps. The accuracy is the same within seed noise (above), so no option keeps the
fixed order.
"""
from digitjax import config as base

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the training pixels on [0, 1], as torchvision


def get_config():
  c = base.get_config()
  c.name = "speedrun_mnist"
  base.choose_model(c, "speedrun_cnn")  # with its own fields (input_scale, input_offset)
  c.model.conv_impl = "mixed"  # lax.conv forward, own backward: fastest here (BENCH.md)
  c.model.init = "torch"  # PyTorch's default init: the schedule is tuned to it
  # (x - MNIST_MEAN) / MNIST_STD on [0, 1] pixels, as x * scale + offset
  c.model.input_scale = 1.0 / MNIST_STD
  c.model.input_offset = -MNIST_MEAN / MNIST_STD
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 0.01  # OneCycleLR's peak (max_lr)
  c.optimizer.beta_1, c.optimizer.beta_2 = 0.7, 0.9  # torch.optim.Adam(betas=(0.7, 0.9))
  c.optimizer.epsilon = 1e-8  # PyTorch's default eps
  c.optimizer.schedule = "onecycle"  # pct_start 0.3, div 25, final div 1e4: torch's defaults
  c.batch_size = 256
  c.eval_batch_size = 1000
  c.num_epochs = 1
  c.steps_per_dispatch = 1000  # above the epoch's 234 steps: the epoch is one program call
  c.dataset.validation_fraction = 0.0  # no validation: all 60,000 training images train
  c.dataset.max_train_examples = 0  # the first N training images in TFDS's order; 0: all
  c.dataset.download = False
  return c
