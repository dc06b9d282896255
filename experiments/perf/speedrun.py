"""MNIST to 99% test accuracy in seconds: python -m experiments.perf.speedrun [options].

  python -m experiments.perf.speedrun [--config=configs/speedrun_mnist.py] [--seeds N]
      [--target 99.0] [--json PATH] [--npz DIR] [--limit N] [--split test|val]

Why: "how long until MNIST is at 99%" is the number people compare frameworks by
(tuomaso/train_mnist_fast: PyTorch, one epoch, 99.04%). configs/speedrun_mnist.py is
that recipe as an ordinary config (`python -m digitjax.main` trains it); this command
times it as such times are quoted, through digitjax's trainer, with no training code of
its own: the data read once and placed on the device as uint8 (TrainData), untimed; the
trainer's programs compiled once ahead (Trainer.compile_ahead), timed apart; then each
seed timed from its init to its test accuracy on the host: Trainer.reseed (new keys,
the same programs), init_state, the epoch's block(s) of steps as digitjax.train runs
them (seeded order, last partial batch dropped), evaluate on the test split. The same
seed gives the same accuracy; compilations during the timed seeds are counted (JSON
compiles_during_seeds: 0, none was timed).

--npz DIR reads experiments.npz_data's exported .npz files instead of TFDS (a machine
without TensorFlow). --limit N trains on the first N training images and tests on the
first N test images (tests, smoke runs). --split val trains on the first 50,000 training
images and reports accuracy on the last 10,000 (for searching recipes without the test
set). The trainer's scan is the only loop; the same recipe in eager PyTorch is
speedrun_vs_torch.run_torch, for experiments.perf.bench --compare.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time

import numpy as np

from digitjax import models
from experiments import perf, whole
from experiments.perf.peak import matmul_gflops

DEFAULT_CONFIG = "configs/speedrun_mnist.py"
REPO_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    DEFAULT_CONFIG)  # the same file from any working directory
VAL_SIZE = 10_000  # --split val: the last 10,000 training images
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch's


def load_config(path: str):
  """(config, problems): the file's config and what makes it unusable here."""
  from digitjax import validation
  from digitjax import config_files
  from digitjax.errors import UserError

  try:
    config = config_files.from_file(path)
  except UserError as e:
    return None, [str(e)]
  problems = validation.validate(config)
  if config.num_seeds != 1:
    problems.append(f"config.num_seeds={config.num_seeds}: the speedrun times one seed at "
                    "a time (--seeds N); leave it 1.")
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


@dataclasses.dataclass
class Speedrun:
  """The trainer and what it trains and tests on, placed once for every seed."""
  trainer: object  # digitjax.trainer.Trainer
  data: object  # digitjax.trainer.TrainData: the training split, placed once
  test: object  # digitjax.data.Split: the eval images, on the host as evaluate reads them
  active: object  # every replica trains (the trainer's per-replica mask)


def place(config, host) -> Speedrun:
  """A Trainer for config and the arrays of load_data placed for it (untimed)."""
  import jax

  from digitjax import data
  from digitjax.errors import UserError
  from digitjax.trainer import TrainData, Trainer

  steps = len(host[1]) // config.batch_size
  if steps < 1:
    raise UserError(f"{len(host[1])} training images are fewer than batch_size="
                    f"{config.batch_size}; raise --limit.")
  trainer = Trainer(config, steps)
  train = TrainData(trainer, data.Split(host[0], host[1]))
  active = trainer.replicate(np.ones(trainer.num_replicas, bool))
  jax.block_until_ready((train.images, active))
  return Speedrun(trainer, train, data.Split(host[2], host[3]), active)


def compile_run(run: Speedrun) -> tuple[float, list[int]]:
  """Compiles the trainer's programs ahead (Trainer.compile_ahead: init, the sort keys
  of an epoch's order, each block length, the eval batch) and returns the seconds that
  took, reported apart from the seeds', and the epoch's block lengths. Init and the
  epoch order run once here; no step of training or evaluation does."""
  t0 = time.perf_counter()
  trainer = run.trainer
  trainer.reseed(trainer.config.seed)
  state = trainer.init_state()
  lengths = []
  for _, n, block in run.data.blocks(1, 0):
    if n not in lengths:
      trainer.compile_ahead(state, block, n, run.active, run.test)
    lengths.append(n)
  return time.perf_counter() - t0, lengths


def time_seed(run: Speedrun, seed: int) -> tuple[float, float]:
  """(test accuracy %, seconds) of one seed: the clock runs from reseeding the trainer
  through init, every epoch's blocks of steps and the test pass, until the accuracy is
  on the host."""
  trainer = run.trainer
  t0 = time.perf_counter()
  trainer.reseed(seed)
  state = trainer.init_state()
  for epoch in range(1, trainer.config.num_epochs + 1):
    for _, n, block in run.data.blocks(epoch, 0):
      state, _ = trainer.train_steps(state, *block, n, run.active)
  metrics, _ = trainer.evaluate(state, run.test)
  accuracy = 100.0 * float(metrics["accuracy"][0])
  return accuracy, time.perf_counter() - t0


class CompileCounter:
  """Counts XLA compilations while open (jax.monitoring's events): a timed seed that
  compiled something would time the compiler too."""

  def __enter__(self):
    import jax

    self.count = 0
    self._listen = lambda event, *_, **__: setattr(self, "count",
                                                    self.count + (event == COMPILE_EVENT))
    jax.monitoring.register_event_duration_secs_listener(self._listen)
    return self

  def __exit__(self, *exc):
    import jax

    jax.monitoring.unregister_event_duration_listener(self._listen)


def work_gflop(config, n_train: int, n_eval: int) -> float:
  """GFLOP one seed computes: XLA's cost analysis of the trainer's train step and eval
  step (digitjax.steps, as the Trainer builds them from config), times how often a seed
  runs them. With a device's matmul rate, the floor on its seconds."""
  import jax
  import jax.numpy as jnp

  from digitjax import steps
  from digitjax.trainer import Trainer

  t = Trainer(config, max(n_train // config.batch_size, 1))
  state = jax.eval_shape(lambda k: steps.create_train_state(
      t.model, t.tx, t.plateau_tx, t.input_shape, k, config.model.init), jax.random.key(0))
  batch = lambda n: (jax.ShapeDtypeStruct((n, *t.input_shape), jnp.uint8),
                     jax.ShapeDtypeStruct((n,), jnp.int32))
  train = functools.partial(steps.train_step, model=t.model, tx=t.tx, config=config)
  evaluate = functools.partial(steps.eval_step, model=t.model, config=config)
  eb = config.eval_batch_size
  per_step = _flops(train, state, *batch(config.batch_size), jax.random.key(0))
  per_eval = _flops(evaluate, state.params, state.batch_stats, *batch(eb),
                    jax.ShapeDtypeStruct((eb,), jnp.float32))
  return (per_step * (n_train // config.batch_size) + per_eval * -(-n_eval // eb)) / 1e9


def _flops(fn, *args) -> float:
  import jax

  cost = jax.jit(fn).lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


def roofline(config, n_train: int, n_eval: int, median_seconds: float) -> str:
  """One line: the seed's work, the rate it ran at, and the floor at the matmul rate."""
  gflop, peak = work_gflop(config, n_train, n_eval), matmul_gflops()
  return (f"work: {gflop:.0f} GFLOP per seed; {gflop / median_seconds:.0f} GFLOP/s at the "
          f"median, {100 * gflop / median_seconds / peak:.0f}% of this device's {peak:.0f} "
          f"GFLOP/s float32 matmul rate; floor at that rate {gflop / peak:.2f} s per seed")


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
  p.add_argument("--npz", help="read experiments.npz_data's exported files from this dir "
                 "(the same as setting $DIGITJAX_NPZ_DIR)")
  p.add_argument("--limit", type=whole(0), default=0,
                 help="only the first N training and N test images (0: all)")
  p.add_argument("--split", choices=("test", "val"), default="test",
                 help="val: train on train[:50000], report accuracy on train[50000:]")
  p.add_argument("--conv-impl", choices=("config", *models.CONV_IMPLS), default="config",
                 help="config: the config's model.conv_impl")
  p.add_argument("--roofline", action="store_true",
                 help="also print the seed's GFLOP (XLA's count), the rate it ran at and "
                      "its floor at this device's float32 matmul rate")
  return p


def _setup(p, a):
  """(config, Speedrun, host arrays) for the parsed arguments; data and placement
  printed, untimed. A bad config or missing data is a usage error / one line."""
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
  if a.conv_impl != "config":
    config.model.conv_impl = a.conv_impl
  print(f"device: {device_name()}; conv {config.model.conv_impl}, loop scan", flush=True)
  t0 = time.perf_counter()
  try:
    host = load_data(config, a.split, a.limit)
    run = place(config, host)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"data: {len(host[1]):,} train, {len(host[3]):,} {a.split} images on the device as "
        f"uint8 ({time.perf_counter() - t0:.1f} s, not timed below)", flush=True)
  return config, run, host


def main(argv=None) -> dict:
  p = _parser()
  a = p.parse_args(argv)
  config, run, host = _setup(p, a)
  compile_s, blocks = compile_run(run)
  print(f"compile: {compile_s:.2f} s (once, before the first seed; an epoch is "
        f"{len(blocks)} Trainer.train_block call(s) of {'+'.join(map(str, blocks))} steps)",
        flush=True)
  accuracy, seconds = [], []
  with CompileCounter() as compiles:
    for seed in range(config.seed, config.seed + a.seeds):
      acc, sec = time_seed(run, seed)
      accuracy.append(acc)
      seconds.append(sec)
      print(f"seed {seed}: {a.split} accuracy {acc:.2f}%, {sec:.2f} s", flush=True)
  print(summarize(accuracy, seconds, a.target))
  if compiles.count:
    print(f"note: {compiles.count} compilation(s) ran during the timed seeds.")
  if a.roofline:
    print(roofline(config, len(host[1]), len(host[3]), float(np.median(seconds))))
  result = dict(seconds=seconds, accuracy=accuracy, compile_seconds=compile_s,
                device=device_name(),
                config=a.config, split=a.split, target=a.target,
                train_images=len(host[1]), eval_images=len(host[3]),
                conv_impl=config.model.conv_impl, loop="scan", blocks_per_epoch=blocks,
                compiles_during_seeds=compiles.count)
  if a.json:
    perf.write_result(a.json, result)
  return result


if __name__ == "__main__":
  main()
