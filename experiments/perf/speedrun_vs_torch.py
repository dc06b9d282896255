"""The MNIST speedrun in digitjax and in eager PyTorch, side by side: bench --compare's line.

The same recipe (configs/speedrun_mnist.py) in both frameworks, one seed of each in turn so
both see the same machine load, timed as experiments/perf/speedrun.py times a seed (init,
the epoch, the test pass; digitjax's compilation apart). Needs PyTorch (the `bench`
extra) and real MNIST.
"""
from __future__ import annotations

import time

import numpy as np

from digitjax import models
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
  tensors = torch_arrays(host)
  compile_s, _ = speedrun.compile_run(run)
  ours, theirs = [], []
  for seed in range(k):
    ours.append(speedrun.time_seed(run, seed))
    theirs.append(run_torch(config, seed, tensors))
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


def torch_model():
  """speedrun_cnn in PyTorch (its input Rescaling apart), PyTorch's default init."""
  import torch.nn as tnn

  return tnn.Sequential(tnn.Conv2d(1, 24, 5), tnn.MaxPool2d(2), tnn.ReLU(),
                        tnn.Conv2d(24, 32, 3), tnn.MaxPool2d(2), tnn.ReLU(), tnn.Flatten(),
                        tnn.Linear(800, 256), tnn.ReLU(), tnn.Linear(256, 10))


def run_torch(config, seed: int, arrays) -> tuple[float, float]:
  """(test accuracy %, seconds) of the config's recipe (its optimizer and onecycle
  fields, model.input_scale/offset) in eager PyTorch, timed as time_seed; uint8 NCHW
  tensors in memory, each batch scaled as it is used; as digitjax's trainer, a seeded
  order each epoch and the last partial batch dropped."""
  import torch
  import torch.nn.functional as F

  o, m, bs = config.optimizer, models.settings(config.model), config.batch_size
  x, y, tx, ty = arrays
  steps = len(y) // bs
  t0 = time.perf_counter()
  torch.manual_seed(seed)
  model = torch_model()
  opt = torch.optim.Adam(model.parameters(), lr=o.learning_rate, betas=(o.beta_1, o.beta_2),
                         eps=o.epsilon)
  sched = torch.optim.lr_scheduler.OneCycleLR(
      opt, max_lr=o.learning_rate, total_steps=steps * config.num_epochs,
      pct_start=o.pct_start, div_factor=o.div_factor, final_div_factor=o.final_div_factor,
      cycle_momentum=False)
  norm = lambda b: b.float() / 255.0 * m.input_scale + m.input_offset
  model.train()
  for _ in range(config.num_epochs):
    order = torch.randperm(len(y))
    for i in range(steps):
      idx = order[i * bs:(i + 1) * bs]
      loss = F.cross_entropy(model(norm(x[idx])), y[idx])
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
      sched.step()
  model.eval()
  correct, eb = 0, config.eval_batch_size
  with torch.no_grad():
    for i in range(0, len(ty), eb):
      correct += int((model(norm(tx[i:i + eb])).argmax(1) == ty[i:i + eb]).sum())
  return 100.0 * correct / len(ty), time.perf_counter() - t0


def torch_arrays(host):
  """The numpy split as PyTorch tensors: uint8 NCHW images, int64 labels (untimed)."""
  import torch

  to_x = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
  to_y = lambda a: torch.from_numpy(a.astype(np.int64))
  return to_x(host[0]), to_y(host[1]), to_x(host[2]), to_y(host[3])
