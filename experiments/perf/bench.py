"""Training-speed benchmark: python -m experiments.perf.bench [--steps N] [--compare] [--out F].

Why: digitjax claims to train the reports' models faster than Keras or PyTorch on the
same machine. This command measures it in one process run, so every ratio it prints is
side by side under the same load: for keras_mlp (B1), keras_cnn (B2) and cnn_bn (B6) at
batch 128 on synthetic MNIST-shaped uint8 data kept on the device (as the trainer does):

- compile seconds of the jitted train step (`Trainer.train_block` of one step);
- steady-state epoch seconds: one warm-up epoch, then the median of --repeats epochs.
  With --steps N each "epoch" is N steps, scaled to 60,000 images (marked `*`);
- samples/s; training FLOPs per sample, both from XLA's cost analysis of the compiled
  step and counted (dense/conv multiply-adds x 2 x 3); achieved GFLOP/s (counted FLOPs,
  so it compares across implementations), and its fraction of this machine's fp32
  matmul peak (2048x2048 jnp.dot, measured in the same run);
- K=8 seeds vmapped in one jitted step vs 8 sequential runs (perceptron A1, keras_mlp);
- with --reference-layers, cnn_bn and keras_cnn again as built before digitjax's CPU
  layer work (nn.max_pool, nn.Dropout, no fusion boundary before the conv patches), for
  the before/after ratio in the same run;
- with --compare, PyTorch eager and Keras 3 (JAX backend) on the same models and data;
  and the MNIST speedrun (configs/speedrun_mnist.py: one epoch to ~99% test accuracy on
  real MNIST) in digitjax (experiments.perf.speedrun) and in eager PyTorch, --speedrun-seeds
  seeds each, alternating, with the ratio of their median seconds per seed.

Figures are noisy on shared machines; quote the ratios, with the absolute numbers of
the same run. The JSON (--out) holds everything printed.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import argparse
import contextlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from digitjax import config as base
from digitjax import trainer as trainer_lib
from experiments import perf, whole
from experiments.perf import reference_layers, seed_timing, speedrun_vs_torch, torch_keras
from experiments.perf.peak import matmul_gflops

EPOCH_IMAGES = 60_000
MODELS = ("keras_mlp", "keras_cnn", "cnn_bn")


def model_config(name: str, batch: int):
  """The benchmarked configs: REPORTS.md B1, B2, B6 (A1 for the seeds table)."""
  c = base.get_config()
  c.batch_size = batch
  c.dataset.validation_fraction = 0.1
  if name == "keras_mlp":
    c.model.name, c.model.hidden_units, c.model.dropout = "mlp", (512, 512), 0.2
    c.optimizer.name = "rmsprop"
  elif name == "keras_cnn":
    c.model.name, c.optimizer.name = "keras_cnn", "adadelta"
  elif name == "cnn_bn":
    c.model.name, c.model.l2, c.optimizer.name = "cnn_bn", 1e-4, "rmsprop"
    c.augment.noise_std = 0.1
  elif name == "perceptron":
    c.model.name, c.model.output_activation, c.optimizer.name = "perceptron", "sigmoid", "sgd"
  else:
    raise ValueError(name)
  return c


def synthetic(n: int = EPOCH_IMAGES, seed: int = 0):
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8),
          rng.integers(0, 10, (n,), dtype=np.int32))


def counted_flops(trainer) -> float:
  """Training FLOPs per sample of the dense and conv layers: 2 x multiply-adds x 3.

  Unlike XLA's cost analysis, this does not depend on how a layer is written (XLA also
  counts elementwise and integer ops, e.g. the dropout hash), so GFLOP/s and the fraction
  of peak compare across implementations and frameworks (../shared/BENCHMARKS.md's rule).
  """
  x = jnp.zeros((1, *trainer.input_shape), jnp.float32)
  variables = jax.eval_shape(lambda: trainer.model.init(jax.random.key(0), x))
  # In training mode, so that GoogLeNet's auxiliary heads are counted; by paths, not
  # top-level names, as its convs sit inside its inception modules.
  _, inter = jax.eval_shape(lambda v: trainer.model.apply(
      v, x, train=True, rngs={"dropout": jax.random.key(0)}, capture_intermediates=True,
      mutable=True), variables)
  outputs = traverse_util.flatten_dict(inter["intermediates"])
  macs = 0
  for path, kernel in traverse_util.flatten_dict(variables["params"]).items():
    if path[-1] != "kernel":
      continue
    out = outputs[(*path[:-1], "__call__")][0].shape
    macs += kernel.size * (int(np.prod(out[1:-1])) if kernel.ndim == 4 else 1)
  return 6.0 * macs


def bench_flax(name, config, images, labels, steps, repeats, dispatch=1, reference=False):
  """Compile time, FLOPs/sample, and median epoch seconds of the digitjax train step.

  dispatch > 1 times what `config.steps_per_dispatch` makes the trainer run: blocks of
  that many steps in one jitted lax.scan (`Trainer.train_block`) instead of one call per
  step; compile_s and the FLOPs stay those of the single step. reference: the model with
  flax's stock layers instead of digitjax's CPU forms (perf/reference_layers.py)."""
  with reference_layers.reference_layers() if reference else contextlib.nullcontext():
    return _bench_flax(name, config, images, labels, steps, repeats, dispatch)


def _bench_flax(name, config, images, labels, steps, repeats, dispatch):
  bs = config.batch_size
  full = len(labels) // bs
  k = min(steps or full, full)
  trainer = trainer_lib.Trainer(config, full)
  state = trainer.init_state()
  images, labels = jax.device_put(images), jax.device_put(labels)
  keys, active = trainer.step_keys, trainer.replicate(np.array([True]))
  order = trainer.epoch_order(0, len(labels), bs)
  t0 = time.perf_counter()
  step = trainer.train_block.lower(state, images, labels, order, np.int32(0), keys,
                                   active, n=1).compile()
  compile_s = time.perf_counter() - t0
  cost = step.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  xla_flops = float(cost.get("flops", 0.0)) / bs
  flops = counted_flops(trainer)

  n = max(1, min(dispatch or trainer_lib.steps_per_dispatch(config), k))  # 0: auto

  def epoch(state, e):
    order = trainer.epoch_order(e, len(labels), bs)
    for b in range(0, k, n):
      if n == 1:  # the block of one step compiled above
        state, metrics = step(state, images, labels, order, np.int32(b), keys, active)
      else:
        state, metrics = trainer.train_block(state, images, labels, order, np.int32(b), keys,
                                             active, n=min(n, k - b))
    jax.block_until_ready((state, metrics))  # the only sync: async dispatch in between
    return state

  state = epoch(state, 1)  # warm-up
  times = []
  for e in range(repeats):
    t0 = time.perf_counter()
    state = epoch(state, e + 2)
    times.append(time.perf_counter() - t0)
  scale = full / k
  epoch_s = float(np.median(times)) * scale
  return dict(model=name, dispatch=n, compile_s=compile_s, epoch_s=epoch_s, scaled=k < full,
              steps_timed=k, epoch_times=[t * scale for t in times],
              samples_per_s=full * bs / epoch_s, flops_per_sample=flops,
              xla_flops_per_sample=xla_flops, gflops=flops * full * bs / epoch_s / 1e9,
              xla_gflops=xla_flops * full * bs / epoch_s / 1e9)


def bench_seeds(name, images, labels, k, steps, repeats, batch):
  """Seconds for `steps` steps of k seeds: vmapped in one program vs one after another."""
  config = model_config(name, batch)
  trainers = seed_timing.seed_trainers(config, k, len(labels) // batch)
  dimages, dlabels = jax.device_put(images), jax.device_put(labels)
  vstate = seed_timing.run_vmapped(trainers, dimages, dlabels, 1, 2)  # compile + warm
  sstates = seed_timing.run_sequential(trainers, dimages, dlabels, 1, 2)
  jax.block_until_ready((vstate, sstates))
  tv, ts = [], []
  for r in range(repeats):
    t0 = time.perf_counter()
    vstate = seed_timing.run_vmapped(trainers, dimages, dlabels, r + 2, steps, vstate)
    jax.block_until_ready(vstate)
    tv.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    sstates = seed_timing.run_sequential(trainers, dimages, dlabels, r + 2, steps, sstates)
    jax.block_until_ready(sstates)
    ts.append(time.perf_counter() - t0)
  v, s = float(np.median(tv)), float(np.median(ts))
  return dict(model=name, k=k, steps=steps, vmapped_s=v, sequential_s=s, speedup=s / v)


def _fmt_table(rows, peak, compared):
  head = ("model", "compile s", "epoch s", "samples/s", "MFLOP/sample (XLA)",
          "MFLOP/sample (model)", "GFLOP/s", "% of peak")
  extra = []
  if compared:
    extra = ["torch s", "torch/ours", "keras s", "keras/ours"]
  lines = [" | ".join(head + tuple(extra)), " | ".join("---" for _ in head + tuple(extra))]
  for r in rows:
    cells = [r["model"], f"{r['compile_s']:.1f}",
             f"{r['epoch_s']:.1f}{'*' if r['scaled'] else ''}", f"{r['samples_per_s']:,.0f}",
             f"{r['xla_flops_per_sample'] / 1e6:.2f}", f"{r['flops_per_sample'] / 1e6:.2f}",
             f"{r['gflops']:.1f}",
             f"{100 * r['gflops'] / peak:.0f}%"]
    if compared:
      for fw in ("torch", "keras"):
        t = r.get(f"{fw}_epoch_s")
        cells += ([f"{t:.1f}{'*' if r['scaled'] else ''}", f"{t / r['epoch_s']:.2f}x"]
                  if t else ["-", "-"])
    lines.append(" | ".join(cells))
  return "\n".join("| " + l + " |" for l in lines)


def _parse(argv):
  p = argparse.ArgumentParser(prog="python -m experiments.perf.bench",
                              description=__doc__.splitlines()[0])
  p.add_argument("--models", default=",".join(MODELS))
  p.add_argument("--batch", type=whole(1), default=128)
  p.add_argument("--steps", type=whole(0), default=0,
                 help="time N steps per 'epoch' and scale to 60,000 images (0: full epochs)")
  p.add_argument("--repeats", type=whole(1), default=3, help="timed epochs after the warm-up")
  p.add_argument("--compare", action="store_true", help="also PyTorch eager and Keras 3 (JAX)")
  p.add_argument("--torch-threads", type=whole(0), default=0, help="0: PyTorch's default")
  p.add_argument("--reference-layers", action="store_true",
                 help="also time cnn_bn/keras_cnn with nn.max_pool and nn.Dropout")
  p.add_argument("--dispatch", type=whole(1), default=1,
                 help="also time each model with this many steps per jitted call "
                      "(config.steps_per_dispatch); 1: skip")
  p.add_argument("--seeds", type=whole(0), default=8, help="K for the vmapped-seeds table (0: skip)")
  p.add_argument("--seed-steps", type=whole(1), default=100)
  p.add_argument("--speedrun-seeds", type=whole(0), default=3,
                 help="with --compare: seeds of the MNIST speedrun per framework (0: skip)")
  p.add_argument("--out", default="runs/bench/bench.json")
  a = p.parse_args(argv)
  known = (*MODELS, "perceptron")
  unknown = [m for m in a.models.split(",") if m not in known]
  if unknown:
    p.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
  return a


def _time_model(a, name, images, labels):
  """The rows for one model: digitjax, then its variants and the other frameworks.

  Returns (rows, dispatch speedup or None)."""
  row = bench_flax(name, model_config(name, a.batch), images, labels, a.steps, a.repeats)
  rows, speedup = [row], None
  if a.reference_layers and name in ("cnn_bn", "keras_cnn"):
    ref = bench_flax(name, model_config(name, a.batch), images, labels, a.steps, a.repeats,
                     reference=True)
    ref["model"] = f"{name} (reference layers)"
    rows.append(ref)
  if a.dispatch > 1:
    blocks = bench_flax(name, model_config(name, a.batch), images, labels, a.steps,
                        a.repeats, dispatch=a.dispatch)
    blocks["model"] = f"{name} ({blocks['dispatch']} per dispatch)"
    rows.append(blocks)
    speedup = (blocks["dispatch"], row["epoch_s"] / blocks["epoch_s"])
  if a.compare:
    steps, full = row["steps_timed"], len(labels) // a.batch
    if torch_keras.torch_available():
      t, threads = torch_keras.torch_epoch_seconds(name, images, labels, a.batch, steps,
                                               a.repeats, a.torch_threads or None)
      row.update(torch_epoch_s=t * full / steps, torch_threads=threads)
    t, backend = torch_keras.keras_epoch_seconds(name, images, labels, a.batch, steps, a.repeats)
    row.update(keras_epoch_s=t * full / steps, keras_backend=backend)
  return rows, speedup


def _report_speedups(rows, dispatch_speedups, results):
  """Prints (and records) layer and dispatch speedups over the rows just timed."""
  ratios, by_model = {}, {x["model"]: x for x in rows}
  for name in ("cnn_bn", "keras_cnn"):
    if name in by_model and f"{name} (reference layers)" in by_model:
      ratios[name] = by_model[f"{name} (reference layers)"]["epoch_s"] / by_model[name]["epoch_s"]
      print(f"{name}: digitjax layers {ratios[name]:.2f}x faster than the reference "
            "layers (nn.max_pool, nn.Dropout, no fusion boundary)")
  results["layer_speedups"] = ratios
  for name, (n, speedup) in dispatch_speedups.items():
    print(f"{name}: {n} steps per dispatch {speedup:.2f}x faster than one step per call")
  if dispatch_speedups:
    results["dispatch_speedups"] = {name: s for name, (_, s) in dispatch_speedups.items()}


def _time_seeds(a, images, labels, results):
  """K seeds vmapped in one jit against the same seeds one after another."""
  results["seeds"] = []
  print(f"\nK={a.seeds} seeds, {a.seed_steps} steps each: vmapped in one jit vs sequential")
  for name in ("perceptron", "keras_mlp"):
    s = bench_seeds(name, images, labels, a.seeds, a.seed_steps, a.repeats, a.batch)
    results["seeds"].append(s)
    print(f"  {name:10s} vmapped {s['vmapped_s']:.2f} s, sequential {s['sequential_s']:.2f} s: "
          f"{s['speedup']:.2f}x")


def main(argv=None):
  a = _parse(argv)
  images, labels = synthetic()
  results = dict(argv=vars(a), backend=jax.default_backend(), devices=str(jax.devices()),
                 cpu_count=os.cpu_count(), machine=platform.machine(), jax=jax.__version__)
  peak_before = matmul_gflops()
  rows, dispatch_speedups = [], {}
  for name in a.models.split(","):
    print(f"timing {name} ...", flush=True)
    model_rows, speedup = _time_model(a, name, images, labels)
    rows += model_rows
    if speedup:
      dispatch_speedups[name] = speedup
  peak = max(peak_before, matmul_gflops())  # before and after: the less disturbed one
  results.update(matmul_peak_gflops=peak, rows=rows)
  if a.compare and not torch_keras.torch_available():
    print("PyTorch is not installed: `pip install -e .[bench]` to compare with it.")

  print(f"\nfp32 matmul peak (2048x2048 jnp.dot): {peak:.1f} GFLOP/s; batch {a.batch}; "
        f"{'* = ' + str(a.steps) + ' steps scaled to 60,000 images' if a.steps else ''}")
  print(_fmt_table(rows, peak, a.compare))
  _report_speedups(rows, dispatch_speedups, results)
  if a.compare and a.speedrun_seeds:
    speedrun_vs_torch.compare(a.speedrun_seeds, a.torch_threads or None, results)
  if a.seeds:
    _time_seeds(a, images, labels, results)
  perf.write_result(a.out, results)
  return results

if __name__ == "__main__":
  main()
