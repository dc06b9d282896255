"""Compare two sets of seeds (Welch's t-test), and the benchmark's PyTorch / Keras models.

  python -m experiments.compare runs/a runs/b            # two workdirs (or sweep points)
  python -m experiments.compare B6 B6a                    # two reproduce rows
  python -m experiments.compare runs/sweeps/x/p=1 runs/sweeps/x/p=2 --metric val_accuracy

A side is a folder (every finished run under it: a workdir, a sweep point, a reproduce
row's folder; each seed once) or a reproduce row id (its runs under runs/reproduce, read
the report's way; without runs, the committed table's mean, std and seeds). Prints each
side's n, mean, std and 95% CI, the difference B - A with its 95% CI, and Welch's t, dof
and two-sided p (scipy.stats.ttest_ind(equal_var=False)). Accuracies print in %.

The rest of this module: PyTorch (eager) and Keras 3 (JAX backend) versions of the
benchmarked models (experiments/bench.py --compare).

Why: the issue's speed claims are ratios against what users would otherwise run. Each
framework gets the same architecture, optimizer (Keras defaults), batch size, synthetic
uint8 data scaled to [0, 1] per batch, and is timed the same way (warm-up, then the
median of repeated epochs or step windows). Imports are lazy: torch comes only with the
`bench` extra (`pip install -e .[bench]`), and Keras must see KERAS_BACKEND=jax before
its first import (experiments.bench sets it).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

from experiments import runner

SPECS = {  # model -> (optimizer, dropout-free layer list is built per framework below)
    "keras_mlp": "rmsprop",
    "keras_cnn": "adadelta",
    "cnn_bn": "rmsprop",
}


def torch_available() -> bool:
  try:
    import torch  # noqa: F401
    return True
  except ImportError:
    return False


def _torch_model(name):
  import torch.nn as tnn
  if name == "keras_mlp":
    return tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 512), tnn.ReLU(), tnn.Dropout(0.2),
                          tnn.Linear(512, 512), tnn.ReLU(), tnn.Dropout(0.2),
                          tnn.Linear(512, 10))
  if name == "keras_cnn":
    return tnn.Sequential(tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.Conv2d(32, 64, 3), tnn.ReLU(),
                          tnn.MaxPool2d(2), tnn.Dropout(0.25), tnn.Flatten(),
                          tnn.Linear(9216, 128), tnn.ReLU(), tnn.Dropout(0.5),
                          tnn.Linear(128, 10))
  bn = lambda c: tnn.BatchNorm2d(c, eps=1e-3, momentum=0.01)  # Keras momentum 0.99
  return tnn.Sequential(
      tnn.Conv2d(1, 16, 3), tnn.ReLU(), bn(16), tnn.Dropout(0.2),
      tnn.Conv2d(16, 32, 3), tnn.ReLU(), bn(32), tnn.MaxPool2d(2), tnn.Dropout(0.3),
      tnn.Conv2d(32, 64, 3), tnn.ReLU(), bn(64), tnn.MaxPool2d(2), tnn.Dropout(0.35),
      tnn.Conv2d(64, 64, 1), tnn.ReLU(), bn(64), tnn.Dropout(0.4),
      tnn.Flatten(), tnn.Linear(1600, 128), tnn.ReLU(), tnn.Linear(128, 10))


def torch_epoch_seconds(name, images, labels, batch, steps, repeats, threads=None):
  """Median seconds of `steps` training steps (eager PyTorch), and its thread count."""
  import torch
  import torch.nn.functional as F
  if threads:
    torch.set_num_threads(threads)
  torch.manual_seed(0)
  model = _torch_model(name)
  if SPECS[name] == "rmsprop":
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
  else:
    opt = torch.optim.Adadelta(model.parameters(), lr=1e-3, rho=0.95, eps=1e-7)
  x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # uint8 NCHW
  y = torch.from_numpy(labels.astype(np.int64))
  convs = [m.weight for m in model if isinstance(m, torch.nn.Conv2d)]
  n = len(y)

  def run(k, perm):
    for b in range(k):
      idx = perm[b * batch:(b + 1) * batch]
      xb = x[idx].float() / 255.0
      if name == "cnn_bn":
        xb = xb + 0.1 * torch.randn_like(xb)
      loss = F.cross_entropy(model(xb), y[idx])
      if name == "cnn_bn":
        loss = loss + 1e-4 * sum((w * w).sum() for w in convs)
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
    return float(loss)

  model.train()
  run(min(steps, 5), torch.randperm(n))  # warm-up
  times = []
  for _ in range(repeats):
    perm = torch.randperm(n)
    t0 = time.perf_counter()
    run(steps, perm)
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), torch.get_num_threads()


def _keras_model(name):
  import keras
  from keras import layers
  if name == "keras_mlp":
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(),
                             layers.Dense(512, "relu"), layers.Dropout(0.2),
                             layers.Dense(512, "relu"), layers.Dropout(0.2), layers.Dense(10)])
  if name == "keras_cnn":
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                             layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                             layers.Dropout(0.25), layers.Flatten(), layers.Dense(128, "relu"),
                             layers.Dropout(0.5), layers.Dense(10)])
  reg = keras.regularizers.l2(1e-4)
  conv = lambda f, k: layers.Conv2D(f, k, activation="relu", kernel_initializer="he_normal",
                                    kernel_regularizer=reg)
  return keras.Sequential([
      keras.Input((28, 28, 1)), layers.GaussianNoise(0.1),
      conv(16, 3), layers.BatchNormalization(), layers.Dropout(0.2),
      conv(32, 3), layers.BatchNormalization(), layers.MaxPooling2D(2), layers.Dropout(0.3),
      conv(64, 3), layers.BatchNormalization(), layers.MaxPooling2D(2), layers.Dropout(0.35),
      conv(64, 1), layers.BatchNormalization(), layers.Dropout(0.4),
      layers.Flatten(), layers.Dense(128, "relu"), layers.Dense(10)])


def keras_epoch_seconds(name, images, labels, batch, steps, repeats):
  """Median seconds of model.fit over `steps` batches (Keras 3, whatever its backend is)."""
  import keras
  keras.utils.set_random_seed(0)
  model = _keras_model(name)
  opt = (keras.optimizers.RMSprop(1e-3, rho=0.9, epsilon=1e-7) if SPECS[name] == "rmsprop"
         else keras.optimizers.Adadelta(1e-3, rho=0.95, epsilon=1e-7))
  model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  x = images[: steps * batch].astype(np.float32) / 255.0  # Keras users feed floats
  y = labels[: steps * batch]
  model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compile + warm-up
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), keras.backend.backend()


# ---- python -m experiments.compare A B: Welch's t-test between two sets of seeds ----

def _folder_values(path: str, metric: str) -> list[float]:
  """The metric of every finished seed under path (results.json files; a seed found in
  two layouts counts once, the first in path order)."""
  found = {}
  for root, dirs, files in os.walk(path):
    dirs[:] = sorted(d for d in dirs if d not in ("checkpoints", "tb"))
    if "results.json" not in files:
      continue
    try:
      with open(os.path.join(root, "results.json")) as f:
        results = json.load(f)
    except (OSError, ValueError):
      continue
    for k, p in enumerate(runner.per_seed(results)):
      if p.get(metric) is not None:
        found.setdefault(p.get("seed", (root, k)), float(p[metric]))
  return list(found.values())


def _row_side(row_id: str, workroot: str):
  """A reproduce row: its seeds' figures (in %) from runs under workroot, else the
  committed table's summary (dict of n, mean, std). Returns (values or summary, source)."""
  from experiments import catalogue, reproduce

  row = {r.id: r for r in catalogue.ROWS}[row_id]
  runs = reproduce.finished_entries(row, catalogue.load_config(row.config),
                                    os.path.join(workroot, row_id))
  if runs:
    return [r["accuracy"] for r in runs], f"runs under {workroot}/{row_id}"
  table = os.path.join(catalogue.ROOT, "experiments", "results", f"{row.report}.csv")
  with open(table, newline="") as f:
    old = {r["row"]: r for r in csv.DictReader(f)}.get(row_id)
  if not old or not old.get("ours mean %"):
    raise ValueError(f"row {row_id} has no finished run under {workroot} and no figures "
                     f"in {os.path.relpath(table, catalogue.ROOT)}")
  summary = dict(n=int(old["seeds"]), mean=float(old["ours mean %"]),
                 std=float(old["ours std"] or 0))
  return summary, f"{os.path.relpath(table, catalogue.ROOT)} (mean, std, seeds as committed)"


def load_side(spec: str, metric: str, workroot: str):
  """(values or summary dict, what they are) for a folder or a reproduce row id."""
  from experiments import catalogue

  if os.path.isdir(spec):
    values = _folder_values(spec, metric)
    if not values:
      raise ValueError(f"{spec}: no finished run with {metric} under it (results.json)")
    scale = 100.0 if "accuracy" in metric else 1.0
    return [scale * v for v in values], f"{len(values)} finished seed(s) under {spec}"
  if spec in {r.id for r in catalogue.ROWS}:
    return _row_side(spec, workroot)
  raise ValueError(f"{spec!r} is neither a folder nor a reproduce row id (e.g. B6)")


def _check_metric(a: str, b: str, metric: str) -> None:
  """A reproduce row gives the accuracy (%) its report published, whatever --metric says:
  beside a folder's loss it would compare a loss with a percentage."""
  from digitjax import reporting
  from experiments import catalogue

  if metric not in reporting.SEED_STATS:
    raise ValueError(f"--metric {metric!r} is not a figure a run reports; known: "
                     f"{', '.join(reporting.SEED_STATS)}")
  rows = [x for x in (a, b) if not os.path.isdir(x) and x in {r.id for r in catalogue.ROWS}]
  if rows and "accuracy" not in metric:
    raise ValueError(f"row {rows[0]} gives the accuracy (%) its report published, not "
                     f"{metric}: compare two folders of runs for {metric}, or leave "
                     "--metric out")


def _line(name: str, s: dict) -> str:
  ci = f"[{s['ci'][0]:.4f}, {s['ci'][1]:.4f}]" if s.get("ci") else "undefined (1 seed)"
  return (f"{name}: n {s['n']}, mean {s['mean']:.4f}, std {s['std']:.4f}, 95% CI {ci}")


def compare(a: str, b: str, metric: str = "test_accuracy",
            workroot: str = os.path.join("runs", "reproduce")) -> str:
  """The report `python -m experiments.compare A B` prints."""
  from digitjax import reporting

  _check_metric(a, b, metric)
  (va, what_a), (vb, what_b) = (load_side(x, metric, workroot) for x in (a, b))
  unit = " (%)" if "accuracy" in metric else ""
  lines = [f"{metric}{unit}", f"A = {a}: {what_a}", f"B = {b}: {what_b}"]
  try:
    w = reporting.welch(va, vb)
  except ValueError as e:
    raise ValueError(f"{e}: run more seeds") from None
  lines += [_line("A", w["a"]), _line("B", w["b"]),
            f"B - A: {w['diff']:+.4f}, 95% CI [{w['diff_ci'][0]:+.4f}, {w['diff_ci'][1]:+.4f}]"
            f", Hedges' g {w['hedges_g']:+.2f}",
            f"Welch's t-test: t {w['t']:.3f}, dof {w['dof']:.2f}, p {w['p']:.4f} "
            f"({'significant' if w['p'] < 0.05 else 'not significant'} at the 5% level)"]
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(
      description="Welch's t-test between two sets of seeds: two workdirs, sweep points "
                  "or reproduce rows (e.g. B6 B6a).")
  parser.add_argument("a", help="a folder of finished runs, or a reproduce row id")
  parser.add_argument("b", help="the same, for the other side")
  parser.add_argument("--metric", default="test_accuracy",
                      help="a results.json figure (folders; default test_accuracy). Rows "
                           "always give the figure their report published.")
  parser.add_argument("--workroot", default=os.path.join("runs", "reproduce"),
                      help="where reproduce rows' runs are (default runs/reproduce)")
  args = parser.parse_args(argv)
  try:
    print(compare(args.a, args.b, args.metric, args.workroot))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  main()
