"""What one epoch of a report row costs here: python -m experiments.perf.epoch_cost --rows D3,E1.

Why: the heavy rows (ImageNet-sized networks at 150-224 px, 700-epoch runs) must be
planned before they are run: which fit a CPU session, which need a GPU call and how many
seeds one 10-minute call holds. This times the row's real train step (its config, model,
optimizer, augmentation, batch and steps_per_dispatch) on synthetic uint8 images of the
row's input shape, as many as its train split holds, so data reading is left out: after
a warm-up, --steps steps are timed and scaled to the epoch. Evaluation (one forward pass
over the val split, about a third of a train step per image) is added as counted.

Each line gives the epoch seconds, the epoch's TFLOP (counted from the layers) and the
rate achieved, and the projection per seed at the row's epoch budget (an upper bound where
the row stops early). With --rate, nothing is timed: each row's TFLOP an epoch at another
device's rate (plus --step-ms a step), to size a call on a device not at hand. The
machine's load average is printed with them: on a shared machine, compare rows timed in
one run, not across runs.
"""
from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from digitjax import data
from digitjax import reporting
from digitjax import trainer as trainer_lib
from experiments import whole
from experiments.perf import bench
from experiments.reproduce import catalogue

# Examples in each row's train and val splits (before any max_train_examples limit).
_SPLITS = {"mnist": (54_000, 6_000), "cifar10": (40_000, 10_000),
           "tf_flowers": (2_936, 734)}


def split_sizes(config) -> tuple[int, int]:
  """(train, val) sizes of the config's split: D3/D4 carve 20% of CIFAR-10's 50,000."""
  if config.dataset.name == "tf_flowers":
    return _SPLITS["tf_flowers"]
  total = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}[config.dataset.name]
  n_val = int(round(total * config.dataset.validation_fraction))
  return total - n_val, n_val


def row_epoch(row, steps: int) -> dict:
  """Seconds per epoch of one row on this machine's default device."""
  config = catalogue.load_config(row.config)
  n_train, n_val = split_sizes(config)
  shape = data.image_shape(config)
  num_classes = data.DATASETS[config.dataset.name].num_classes
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n_train, *shape), dtype=np.uint8)
  labels = rng.integers(0, num_classes, (n_train,), dtype=np.int32)
  r = bench.bench_flax(row.id, config, images, labels, steps, repeats=1,
                       dispatch=config.steps_per_dispatch)
  eval_s = r["epoch_s"] / n_train / 3 * n_val
  tflop = epoch_tflop(r["flops_per_sample"], n_train, n_val)
  return dict(row=row.id, config=row.config, input=list(shape), batch=config.batch_size,
              train_s=r["epoch_s"], eval_s=eval_s, epoch_s=r["epoch_s"] + eval_s,
              compile_s=r["compile_s"], steps_timed=r["steps_timed"],
              budget=row.epochs, device=jax.devices()[0].device_kind, tflop=tflop,
              tflops=tflop / (r["epoch_s"] + eval_s))


def epoch_tflop(train_flops_per_sample: float, n_train: int, n_val: int) -> float:
  """TFLOP an epoch: the training FLOPs of the train split and a forward pass (a third of
  them) over the val split, counted from the layers (bench.counted_flops)."""
  return train_flops_per_sample * (n_train + n_val / 3) / 1e12


def row_work(row, rate: float, step_ms: float) -> dict:
  """An epoch's TFLOP without timing anything, and its seconds at `rate` TFLOP/s plus
  `step_ms` a train step (a host-bound loop's floor): to size a device call for a machine
  that is not this one."""
  config = catalogue.load_config(row.config)
  n_train, n_val = split_sizes(config)
  steps = max(1, n_train // config.batch_size)
  tflop = epoch_tflop(bench.counted_flops(trainer_lib.Trainer(config, steps)), n_train, n_val)
  return dict(row=row.id, config=row.config, batch=config.batch_size, budget=row.epochs,
              tflop=tflop, rate=rate, step_ms=step_ms,
              epoch_s=tflop / rate + steps * step_ms / 1000)


def main(argv=None):
  p = argparse.ArgumentParser(prog="python -m experiments.perf.epoch_cost",
                              description=__doc__.splitlines()[0])
  p.add_argument("--rows", required=True, help="comma-separated row ids, e.g. D3,E1,E2-sgd")
  p.add_argument("--steps", type=whole(1), default=20, help="timed steps, scaled to the epoch")
  p.add_argument("--rate", type=float, default=0.0,
                 help="time nothing: give each row's TFLOP an epoch and its seconds at "
                      "this many TFLOP/s (another device's achieved rate)")
  p.add_argument("--step-ms", type=float, default=0.0,
                 help="with --rate: add this many ms a train step (the loop's floor)")
  p.add_argument("--json", default="", help="also write the figures here")
  a = p.parse_args(argv)
  try:
    chosen = catalogue.rows("all", a.rows)
  except Exception as e:  # UserError: unknown row
    p.error(str(e))
  if a.rate < 0 or a.step_ms < 0:
    p.error(f"--rate {a.rate} --step-ms {a.step_ms}: give positive figures (leave --rate "
            "out to time the rows here)")
  if a.step_ms and not a.rate:
    p.error("--step-ms projects with --rate; give both, or neither to time the rows here")
  out = _projected(chosen, a.rate, a.step_ms) if a.rate else _timed(chosen, a.steps)
  if a.json:
    reporting.write_json(a.json, out)


def _timed(chosen, steps) -> list[dict]:
  print(f"device: {jax.devices()[0].device_kind}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
  print("| row | input | batch | epoch s (train + val) | TFLOP an epoch | TFLOP/s | budget "
        "| h per seed at budget |")
  print("|---|---|---|---|---|---|---|---|")
  out = []
  for row in chosen:
    t0 = time.perf_counter()
    r = row_epoch(row, steps)
    r["load_average"] = os.getloadavg()[0]
    out.append(r)
    print(f"| {r['row']} | {'x'.join(map(str, r['input']))} | {r['batch']} | "
          f"{r['epoch_s']:.1f} ({r['train_s']:.1f} + {r['eval_s']:.1f}) | {r['tflop']:.2f} | "
          f"{r['tflops']:.3f} | {r['budget']} | {r['epoch_s'] * r['budget'] / 3600:.2f} |  "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
  return out


def _projected(chosen, rate, step_ms) -> list[dict]:
  print(f"projected at {rate:g} TFLOP/s and {step_ms:g} ms a step (counted FLOPs; nothing "
        "timed)")
  print("| row | batch | TFLOP an epoch | epoch s | budget | min per seed at budget |")
  print("|---|---|---|---|---|---|")
  out = [row_work(row, rate, step_ms) for row in chosen]
  for r in out:
    print(f"| {r['row']} | {r['batch']} | {r['tflop']:.2f} | {r['epoch_s']:.2f} | "
          f"{r['budget']} | {r['epoch_s'] * r['budget'] / 60:.1f} |")
  return out


if __name__ == "__main__":
  main()
