"""MNIST to 99% test accuracy in seconds: python -m experiments.perf.speedrun [options].

  python -m experiments.perf.speedrun [--config=configs/speedrun_mnist.py] [--seeds N]
      [--target 99.0] [--json PATH] [--npz DIR] [--limit N] [--loop auto]

Why: "how long until MNIST is at 99%" is the number people compare frameworks by
(tuomaso/train_mnist_fast: PyTorch, one epoch, 99.04%). This command runs such a recipe
(configs/speedrun_mnist.py) the way its time is quoted: the data read once and put on
the device as uint8 before any clock starts, the program compiled once ahead (timed and
reported apart), then each seed, one after another, timed from the call to its test
accuracy on the host: PyTorch-style init, one epoch of training, the test pass.

Each seed is one call of one jitted program (init, a lax.scan over the epoch's batches in
their fixed order, a scan over the test batches): no host work, no dispatch per step, so
the same command runs unchanged on CPU, GPU or TPU. The seed only changes the initial
parameters; the same seed gives the same accuracy.

--npz DIR reads experiments.without_tfds's exported .npz files instead of TFDS (for a machine
without TensorFlow). --limit N trains on the first N training images and tests on the
first N test images (tests, smoke runs). --loop steps runs one compiled call per batch
instead (chosen by --loop auto only for --conv-impl xla on CPU, whose weight-gradient
convolutions XLA:CPU runs ~10x slower in a scan).
--split val trains on the first 50,000 training
images and reports accuracy on the last 10,000 (for searching recipes without the test
set). `run_torch` is the same recipe in eager PyTorch, for experiments.perf.bench --compare.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from digitjax import models, reporting
from experiments import whole
from experiments.perf.peak import matmul_gflops

DEFAULT_CONFIG = "configs/speedrun_mnist.py"
REPO_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    DEFAULT_CONFIG)  # the same file from any working directory
VAL_SIZE = 10_000  # --split val: the last 10,000 training images


def onecycle(total, peak, pct_start, div_factor, final_div_factor):
  """torch.optim.lr_scheduler.OneCycleLR(anneal_strategy='cos', three_phase=False) as an
  optax schedule of the step, bit for bit in its phase boundaries (optax's own one-cycle
  schedules put them one step later): cosine from peak/div up to peak until step
  pct_start*total - 1, then cosine down to peak/div/final_div at step total - 1."""
  import jax.numpy as jnp

  start = peak / div_factor
  end1, end2 = float(pct_start * total) - 1, float(total - 1)

  def cos(a, b, pct):
    return b + (a - b) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    up = cos(start, peak, step / end1)
    down = cos(peak, start / final_div_factor, (step - end1) / (end2 - end1))
    return jnp.where(step <= end1, up, down)

  return schedule


def torch_init(params, key):
  """PyTorch's default init for Conv2d and Linear: kaiming_uniform(a=sqrt(5)) kernels
  and uniform biases, both uniform in +-1/sqrt(fan_in) (fan_in = k*k*C_in or inputs).
  The recipe's speed depends on it: Keras's glorot init with zero biases trains slower."""
  import jax

  out = {}
  for i, (name, layer) in enumerate(sorted(params.items())):
    if "kernel" not in layer:
      out[name] = layer
      continue
    kernel, bias = layer["kernel"], layer["bias"]
    bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
    kk, kb = jax.random.split(jax.random.fold_in(key, i))
    out[name] = dict(layer,
                     kernel=jax.random.uniform(kk, kernel.shape, kernel.dtype, -bound, bound),
                     bias=jax.random.uniform(kb, bias.shape, bias.dtype, -bound, bound))
  return out


def _batched(fn, carry, images, labels, bs):
  """carry = fn(carry, x, y) over consecutive batches of bs in order, the last one
  shorter (as PyTorch's DataLoader without drop_last): a lax.scan, then one more call."""
  import jax
  import jax.numpy as jnp

  n = len(labels)
  full = n // bs

  def body(carry, i):
    x = jax.lax.dynamic_slice_in_dim(images, i * bs, bs)
    y = jax.lax.dynamic_slice_in_dim(labels, i * bs, bs)
    return fn(carry, x, y), None

  carry, _ = jax.lax.scan(body, carry, jnp.arange(full, dtype=jnp.int32))
  if n % bs:
    carry = fn(carry, images[full * bs:], labels[full * bs:])
  return carry


def make_parts(config, n_train: int):
  """The speedrun's pure pieces: init(seed) -> (params, opt state); step((params, opt
  state), images, labels) -> the same after one batch; count(params, images, labels,
  correct) -> correct + the batch's correct predictions."""
  import jax
  import jax.numpy as jnp
  import optax

  from digitjax import models, steps

  s = config.speedrun
  model = models.build(config, 10)
  lr = onecycle(-(-n_train // config.batch_size), config.optimizer.learning_rate,
                s.pct_start, s.div_factor, s.final_div_factor)
  tx = optax.adam(lr, b1=s.b1, b2=s.b2, eps=s.eps)

  def forward(params, images):
    x = (images.astype(jnp.float32) / 255.0 - s.mean) / s.std
    return model.apply({"params": params}, x)

  def loss_fn(params, images, labels):
    logits = forward(params, images)
    return steps.compute_loss(logits, labels, "cross_entropy", "softmax").mean()

  def init(seed):
    key = jax.random.key(seed)
    params = model.init(key, jnp.zeros((1, 28, 28, 1), jnp.float32))["params"]
    if s.init == "torch":
      params = torch_init(params, jax.random.fold_in(key, 1))
    return params, tx.init(params)

  def step(carry, images, labels):
    params, opt_state = carry
    grads = jax.grad(loss_fn)(params, images, labels)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  def count(params, images, labels, correct):
    return correct + (forward(params, images).argmax(-1) == labels).sum()

  return init, step, count


def make_run(config, n_train: int):
  """The whole speedrun of one seed as one pure function (loop "scan"):
  (seed, train images, train labels, test images, test labels) -> test correct count."""
  import jax.numpy as jnp

  init, step, count = make_parts(config, n_train)

  def run(seed, train_images, train_labels, test_images, test_labels):
    params, _ = _batched(step, init(seed), train_images, train_labels, config.batch_size)
    return _batched(lambda c, x, y: count(params, x, y, c), jnp.zeros((), jnp.int32),
                    test_images, test_labels, config.eval_batch_size)

  return run


def compile_steps(config, arrays):
  """Loop "steps": the same run as make_run's, as one compiled call per batch from a
  host loop (init, each batch shape, each test-chunk shape compiled ahead). XLA:CPU runs
  lax.conv ~10x slower inside a scan than in a call of its own, and the host's
  dispatch costs little next to a CPU step, so this is the CPU's loop."""
  import jax
  import jax.numpy as jnp

  images, labels, test_images, test_labels = arrays
  init, step, count = make_parts(config, len(labels))
  at = lambda a, i, n: jax.lax.dynamic_slice_in_dim(a, i, n)
  i0 = np.int32(0)
  init_c = jax.jit(init).lower(i0).compile()
  carry = jax.eval_shape(init, i0)
  steps, evals = {}, {}
  for n in {min(config.batch_size, len(labels)), len(labels) % config.batch_size} - {0}:
    fn = lambda c, x, y, i, n=n: step(c, at(x, i, n), at(y, i, n))
    steps[n] = jax.jit(fn, donate_argnums=0).lower(carry, images, labels, i0).compile()
  eb = config.eval_batch_size
  for n in {min(eb, len(test_labels)), len(test_labels) % eb} - {0}:
    fn = lambda p, x, y, i, c, n=n: count(p, at(x, i, n), at(y, i, n), c)
    evals[n] = jax.jit(fn).lower(carry[0], test_images, test_labels, i0,
                                 jnp.zeros((), jnp.int32)).compile()

  def run(seed, images, labels, test_images, test_labels):
    carry = init_c(seed)
    for i in range(0, len(labels), config.batch_size):
      carry = steps[min(config.batch_size, len(labels) - i)](carry, images, labels,
                                                              np.int32(i))
    correct = jnp.zeros((), jnp.int32)
    for i in range(0, len(test_labels), eb):
      correct = evals[min(eb, len(test_labels) - i)](carry[0], test_images, test_labels,
                                                      np.int32(i), correct)
    return correct

  return run


def torch_model():
  """speedrun_cnn in PyTorch: the recipe's own network, PyTorch's default init."""
  import torch.nn as tnn

  return tnn.Sequential(tnn.Conv2d(1, 24, 5), tnn.MaxPool2d(2), tnn.ReLU(),
                        tnn.Conv2d(24, 32, 3), tnn.MaxPool2d(2), tnn.ReLU(), tnn.Flatten(),
                        tnn.Linear(800, 256), tnn.ReLU(), tnn.Linear(256, 10))


def run_torch(config, seed: int, arrays) -> tuple[float, float]:
  """(test accuracy %, seconds) of the same recipe in eager PyTorch, timed as time_seed:
  from init to the test accuracy, data already in memory as uint8 tensors (NCHW), each
  batch scaled and normalised as it is used (as the JAX program does)."""
  import torch
  import torch.nn.functional as F

  s, bs = config.speedrun, config.batch_size
  x, y, tx, ty = arrays
  steps = -(-len(y) // bs)
  t0 = time.perf_counter()
  torch.manual_seed(seed)
  model = torch_model()
  opt = torch.optim.Adam(model.parameters(), lr=config.optimizer.learning_rate,
                         betas=(s.b1, s.b2), eps=s.eps)
  sched = torch.optim.lr_scheduler.OneCycleLR(
      opt, max_lr=config.optimizer.learning_rate, total_steps=steps, pct_start=s.pct_start,
      div_factor=s.div_factor, final_div_factor=s.final_div_factor, cycle_momentum=False)
  norm = lambda b: (b.float() / 255.0 - s.mean) / s.std
  model.train()
  for i in range(0, len(y), bs):
    loss = F.cross_entropy(model(norm(x[i:i + bs])), y[i:i + bs])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
  model.eval()
  correct = 0
  with torch.no_grad():
    for i in range(0, len(ty), config.eval_batch_size):
      logits = model(norm(tx[i:i + config.eval_batch_size]))
      correct += int((logits.argmax(1) == ty[i:i + config.eval_batch_size]).sum())
  return 100.0 * correct / len(ty), time.perf_counter() - t0


def torch_arrays(host):
  """The numpy split as PyTorch tensors: uint8 NCHW images, int64 labels (untimed)."""
  import torch

  to_x = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
  to_y = lambda a: torch.from_numpy(a.astype(np.int64))
  return to_x(host[0]), to_y(host[1]), to_x(host[2]), to_y(host[3])


def load_config(path: str):
  """(config, problems): the file's get_config() with its get_speedrun() fields added
  as config.speedrun (digitjax's schema has no place for them), and what makes the pair
  unusable here."""
  import importlib.util

  from digitjax import config as config_lib

  spec = importlib.util.spec_from_file_location("speedrun_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  problems = config_lib.validate(config)
  if not hasattr(module, "get_speedrun"):
    problems.append(f"{path} has no get_speedrun(); start from {DEFAULT_CONFIG}.")
    return config, problems
  config.speedrun = module.get_speedrun()
  if config.speedrun.init not in ("torch", "keras"):
    problems.append(f"speedrun.init={config.speedrun.init!r}: torch or keras.")
  if config.dataset.name != "mnist":
    problems.append(f"config.dataset.name={config.dataset.name!r}: the speedrun is MNIST's.")
  return config, problems


def load_data(config, split: str = "test", limit: int = 0):
  """(train images, train labels, eval images, eval labels), uint8/int32 numpy, read once
  (digitjax.data, or the .npz files under --npz). split "val" keeps the test set out:
  the eval images are the last 10,000 training images, and training takes none of them."""
  from digitjax import data

  n_train = config.dataset.max_train_examples or 60_000
  if split == "test":
    tr = data.read_split(config, config.dataset.train_split, min(n_train, limit or n_train))
    te = data.read_split(config, config.dataset.test_split, limit)
    return tr.images, tr.labels, te.images, te.labels
  full = data.read_split(config, config.dataset.train_split)
  cut = len(full) - VAL_SIZE
  n_train = min(n_train, cut, limit or cut)
  n_val = min(VAL_SIZE, limit or VAL_SIZE)
  return (full.images[:n_train], full.labels[:n_train], full.images[cut:cut + n_val],
          full.labels[cut:cut + n_val])


def compile_run(config, arrays, loop: str = "scan"):
  """The seed's program(s) compiled ahead for these (device) arrays, and the seconds that
  took: tracing, lowering and XLA's compilation, reported apart from the seeds' time.
  loop "scan": one program per seed; "steps": one call per batch (compile_steps)."""
  import jax

  t0 = time.perf_counter()
  if loop == "steps":
    compiled = compile_steps(config, arrays)
  else:
    compiled = jax.jit(make_run(config, len(arrays[1]))).lower(np.int32(0), *arrays).compile()
  return compiled, time.perf_counter() - t0


def time_seed(compiled, seed: int, arrays) -> tuple[float, float]:
  """(test accuracy %, seconds) of one seed: the clock runs from the call until the
  correct count is on the host, so init, training and the test pass all count."""
  t0 = time.perf_counter()
  correct = int(compiled(np.int32(seed), *arrays))
  seconds = time.perf_counter() - t0
  return 100.0 * correct / len(arrays[3]), seconds


def work_gflop(config, n_train: int, n_eval: int) -> float:
  """GFLOP one seed computes (XLA's cost analysis of one training step and one test
  batch, times their counts): with a device's matmul rate, the floor on its seconds."""
  import jax
  import jax.numpy as jnp

  init, step, count = make_parts(config, n_train)
  carry = jax.eval_shape(init, np.int32(0))
  flops = lambda fn, *args: _flops(jax.jit(fn).lower(*args).compile())
  batch = lambda n: (jax.ShapeDtypeStruct((n, 28, 28, 1), jnp.uint8),
                     jax.ShapeDtypeStruct((n,), jnp.int32))
  per_step = flops(step, carry, *batch(config.batch_size))
  per_eval = flops(count, carry[0], *batch(config.eval_batch_size), jnp.zeros((), jnp.int32))
  return (per_step * n_train / config.batch_size
          + per_eval * n_eval / config.eval_batch_size) / 1e9


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


def roofline(config, n_train: int, n_eval: int, median_seconds: float) -> str:
  """One line: the seed's work, the rate it ran at, and the floor at the matmul rate."""
  gflop, peak = work_gflop(config, n_train, n_eval), matmul_gflops()
  return (f"work: {gflop:.0f} GFLOP per seed; {gflop / median_seconds:.0f} GFLOP/s at the "
          f"median, {100 * gflop / median_seconds / peak:.0f}% of this device's {peak:.0f} "
          f"GFLOP/s float32 matmul rate; floor at that rate {gflop / peak:.2f} s per seed")


def resolve(config, conv_impl: str = "config", loop: str = "auto") -> str:
  """Sets config.model.conv_impl (unless "config": the file's) and returns the loop.

  "auto" is the one-program scan, except for conv_impl "xla" on CPU: there autodiff's
  weight-gradient convolution runs ~10x slower inside a lax.scan (132 ms a step alone,
  1.4 s in a scan), so one call per batch. "mixed" (the config's) has no such
  convolution and runs fastest as the scan (experiments/BENCH.md)."""
  import jax

  if conv_impl != "config":
    config.model.conv_impl = conv_impl
  if loop == "auto":
    cpu_xla = jax.default_backend() == "cpu" and config.model.conv_impl == "xla"
    loop = "steps" if cpu_xla else "scan"
  return loop


def device_name() -> str:
  import jax

  d = jax.devices()[0]
  kind = "" if d.device_kind.lower() == d.platform else f" {d.device_kind}"
  return (f"{d.platform}{kind} x{jax.device_count()}, {os.cpu_count()} CPU cores, "
          f"jax {jax.__version__}")


def summarize(accuracy, seconds, target: float) -> str:
  """Mean and std (over seeds, ddof 1) of accuracy and seconds; the share at the target."""
  acc, sec = np.asarray(accuracy), np.asarray(seconds)
  std = lambda v: float(v.std(ddof=1)) if len(v) > 1 else 0.0
  hits = int((acc >= target).sum())
  return (f"mean over {len(acc)} seed(s): test accuracy {acc.mean():.2f} +- {std(acc):.2f}%, "
          f"{sec.mean():.2f} +- {std(sec):.2f} s/seed (median {np.median(sec):.2f} s); "
          f"{hits}/{len(acc)} ({100.0 * hits / len(acc):.0f}%) at or above {target}%")


def _parser():
  p = argparse.ArgumentParser(prog="python -m experiments.perf.speedrun",
                              description=__doc__.splitlines()[0])
  p.add_argument("--config", default=DEFAULT_CONFIG)
  p.add_argument("--seeds", type=whole(1), default=10, help="seeds config.seed .. +N-1")
  p.add_argument("--target", type=float, default=99.0, help="accuracy %% to count seeds at")
  p.add_argument("--json", help="write {seconds, accuracy, compile_seconds, device} here")
  p.add_argument("--npz", help="read experiments.without_tfds's exported files from this dir "
                 "(the same as setting $DIGITJAX_NPZ_DIR)")
  p.add_argument("--limit", type=whole(0), default=0,
                 help="only the first N training and N test images (0: all)")
  p.add_argument("--split", choices=("test", "val"), default="test",
                 help="val: train on train[:50000], report accuracy on train[50000:]")
  p.add_argument("--conv-impl", choices=("config", *models.CONV_IMPLS), default="config",
                 help="config: the config's model.conv_impl")
  p.add_argument("--loop", choices=("auto", "scan", "steps"), default="auto",
                 help="scan: one program per seed; steps: one call per batch; auto: "
                      "steps for --conv-impl xla on CPU, scan otherwise")
  p.add_argument("--roofline", action="store_true",
                 help="also print the seed's GFLOP (XLA's count), the rate it ran at and "
                      "its floor at this device's float32 matmul rate")
  return p


def main(argv=None) -> dict:
  p = _parser()
  a = p.parse_args(argv)
  if a.config == DEFAULT_CONFIG and not os.path.isfile(a.config):
    a.config = REPO_CONFIG
  if not os.path.isfile(a.config):
    p.error(f"--config: no such file {a.config!r}; the recipe is {DEFAULT_CONFIG}")
  config, problems = load_config(a.config)
  if problems:
    p.error(f"--config {a.config}: {' '.join(problems)}")
  from digitjax.errors import UserError
  if a.npz:
    from digitjax import npz_source
    os.environ[npz_source.ENV] = os.path.abspath(a.npz)
  import jax

  loop = resolve(config, a.conv_impl, a.loop)
  t0 = time.perf_counter()
  try:
    host = load_data(config, a.split, a.limit)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  arrays = jax.block_until_ready(jax.device_put(host))
  device = device_name()
  print(f"device: {device}; conv {config.model.conv_impl}, loop {loop}\n"
        f"data: {len(host[1]):,} train, {len(host[3]):,} {a.split} images on the device as "
        f"uint8 ({time.perf_counter() - t0:.1f} s, not timed below)", flush=True)
  compiled, compile_s = compile_run(config, arrays, loop)
  print(f"compile: {compile_s:.2f} s (once, before the first seed)", flush=True)
  accuracy, seconds = [], []
  for seed in range(config.seed, config.seed + a.seeds):
    acc, sec = time_seed(compiled, seed, arrays)
    accuracy.append(acc)
    seconds.append(sec)
    print(f"seed {seed}: {a.split} accuracy {acc:.2f}%, {sec:.2f} s", flush=True)
  print(summarize(accuracy, seconds, a.target))
  if a.roofline:
    print(roofline(config, len(host[1]), len(host[3]), float(np.median(seconds))))
  result = dict(seconds=seconds, accuracy=accuracy, compile_seconds=compile_s, device=device,
                config=a.config, split=a.split, target=a.target,
                train_images=len(host[1]), eval_images=len(host[3]),
                conv_impl=config.model.conv_impl, loop=loop)
  if a.json:
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    reporting.write_json(a.json, result)
    print(f"JSON: {a.json}")
  return result


if __name__ == "__main__":
  main()
