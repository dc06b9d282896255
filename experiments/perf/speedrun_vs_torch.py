"""The MNIST speedrun in digitjax and in eager PyTorch, side by side: bench --compare's line.

The same recipe (configs/speedrun_mnist.py) in both frameworks, one seed of each in turn so
both see the same machine load, timed as experiments/perf/speedrun.py times a seed (init,
the epoch, the test pass; digitjax's compilation apart). Needs PyTorch (the `bench`
extra) and real MNIST.
"""
from __future__ import annotations

import numpy as np

from experiments.perf import speedrun, torch_keras


def time_both(k: int, limit: int = 0, threads: int | None = None) -> dict:
  """The speedrun's seeds 0..k-1 in digitjax and in eager PyTorch, one of each in turn
  so both see the same machine load: seconds per seed (init, the epoch, the test pass;
  digitjax's compilation apart) and test accuracy, as experiments.perf.speedrun times them.
  limit > 0: only the first `limit` training and test images (tests)."""
  import torch

  if threads:
    torch.set_num_threads(threads)
  config, problems = speedrun.load_config(speedrun.REPO_CONFIG)
  if problems:
    raise ValueError(" ".join(problems))
  host = speedrun.load_data(config, "test", limit)
  run = speedrun.place(config, host)
  tensors = speedrun.torch_arrays(host)
  compile_s, _ = speedrun.compile_run(run)
  ours, theirs = [], []
  for seed in range(k):
    ours.append(speedrun.time_seed(run, seed))
    theirs.append(speedrun.run_torch(config, seed, tensors))
  median = lambda runs: float(np.median([sec for _, sec in runs]))
  return dict(seeds=k, train_images=len(host[1]), compile_s=compile_s,
              conv_impl=config.model.conv_impl, loop="scan",
              torch_threads=torch.get_num_threads(),
              seconds=[sec for _, sec in ours], accuracy=[acc for acc, _ in ours],
              torch_seconds=[sec for _, sec in theirs],
              torch_accuracy=[acc for acc, _ in theirs],
              ratio=median(theirs) / median(ours))


def line(r) -> str:
  """The line bench prints for time_both's result."""
  mean = lambda v: float(np.mean(v))
  return (f"speedrun (configs/speedrun_mnist.py, {r['seeds']} seeds each, alternating): "
          f"digitjax {np.median(r['seconds']):.2f} s/seed ({mean(r['accuracy']):.2f}% test; "
          f"compile {r['compile_s']:.1f} s apart), PyTorch eager "
          f"{np.median(r['torch_seconds']):.2f} s/seed ({mean(r['torch_accuracy']):.2f}%, "
          f"{r['torch_threads']} threads): torch/ours {r['ratio']:.2f}x")


def compare(seeds: int, threads: int | None, results: dict) -> None:
  """Prints bench --compare's speedrun line (and records it in results["speedrun"]);
  skipped, with the reason, without PyTorch or real MNIST."""
  from digitjax.errors import UserError

  if not torch_keras.torch_available():
    print("\nspeedrun: skipped, PyTorch is not installed")
    return
  print("\ntiming the MNIST speedrun ...", flush=True)
  try:
    r = time_both(seeds, threads=threads)
  except UserError as e:  # MNIST not prepared: the speedrun needs the real images
    print(f"speedrun: skipped, {e}")
    return
  results["speedrun"] = r
  print(line(r))
