"""The benchmarked models in PyTorch (eager) and Keras 3, timed as bench times digitjax.

Why: digitjax's speed claims are ratios against what users would otherwise run
(experiments/perf/bench.py --compare). Each framework gets the same architecture, optimizer
(Keras defaults), batch size, synthetic uint8 data scaled to [0, 1] per batch, and is
timed the same way (warm-up, then the median of repeated epochs or step windows). Imports
are lazy: torch comes only with the `bench` extra (`pip install -e .[bench]`), and Keras
must see KERAS_BACKEND=jax before its first import (experiments.perf.bench sets it).
"""
from __future__ import annotations

import time

import numpy as np

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
    return float(loss.detach())

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
