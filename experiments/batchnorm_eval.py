"""How much val accuracy a BatchNorm network loses to its moving averages.

  python -m experiments.batchnorm_eval --workdir runs/reproduce/E6.5/seed0 --which latest

A BatchNorm network is evaluated with moving averages of its batch statistics (Keras's
and digitjax's momentum 0.99: each step moves them 1% of the way to the batch's). When
the weights move faster than those averages follow, or the training batches differ from
the val images (augmentation), the val accuracy logged at the end of an epoch measures the
averages as much as the weights. This prints a checkpoint's val accuracy (the split its
training validated on) three ways:
  - running: with the saved moving averages, what training logged;
  - per-batch: each val batch normalised by its own statistics (training mode);
  - recalibrated: with statistics re-estimated at these weights over the training images,
    unaugmented: the cumulative average of the batch means and variances, as
    torch.optim.swa_utils.update_bn re-estimates them.
When per-batch and recalibrated lie far above running, the weights are better than the
logged figure says.
"""
from __future__ import annotations

import argparse
import sys

import jax
import numpy as np

from digitjax.models.layers import BatchNorm

BATCH = 32  # the reports' batch size: per-batch statistics over as many images as training


def accuracy(module, variables, images, labels, per_batch: bool = False) -> float:
  """Val accuracy with the variables' moving averages, or (per_batch) with each batch's
  own statistics."""
  if per_batch:
    apply = jax.jit(lambda v, x: module.apply(v, x, train=True, mutable=["batch_stats"])[0])
  else:
    apply = jax.jit(lambda v, x: module.apply(v, x, train=False))
  logits = [np.asarray(apply(variables, images[i:i + BATCH]))
            for i in range(0, len(images), BATCH)]
  return float((np.concatenate(logits).argmax(-1) == labels).mean())


def recalibrated(module, variables, images, momentum: float = BatchNorm.momentum) -> dict:
  """variables with batch_stats re-estimated over images (whole batches of BATCH): each
  BatchNorm's mean and var are the averages of its batch means and batch variances.

  A training-mode pass from zeroed statistics returns (1 - momentum) times the batch's
  own, so dividing by (1 - momentum) reads them out of Flax's BatchNorm unchanged."""
  zeros = jax.tree.map(np.zeros_like, variables["batch_stats"])

  @jax.jit
  def batch_stats(x):
    _, new = module.apply({"params": variables["params"], "batch_stats": zeros}, x,
                          train=True, mutable=["batch_stats"])
    return jax.tree.map(lambda a: a / (1 - momentum), new["batch_stats"])

  n = len(images) // BATCH
  if n == 0:
    raise ValueError(f"{len(images)} images are fewer than one batch of {BATCH}.")
  total = None
  for i in range(n):
    s = batch_stats(images[i * BATCH:(i + 1) * BATCH])
    total = s if total is None else jax.tree.map(lambda a, b: a + b, total, s)
  return {"params": variables["params"], "batch_stats": jax.tree.map(lambda a: a / n, total)}


def compare(workdir: str, which: str = "best") -> dict:
  """{running, per_batch, recalibrated}: the val accuracy of workdir's `which` checkpoint."""
  from digitjax import data, inference, validation
  from digitjax.errors import UserError

  model = inference.load(workdir, which)
  if not model.variables.get("batch_stats"):
    raise UserError(f"{workdir}: {model.config.model.name} has no BatchNorm layers; "
                    "its val accuracy does not depend on moving averages.")
  if not validation.has_validation(model.config):
    raise UserError(f"{workdir} trained with no validation set "
                    "(dataset.validation_fraction=0): there is no val split to compare on.")
  train, val = data.load_train_val(model.config)
  x_val = model.prepare(val.images)  # as the model saw them: float32 in [0, 1]
  stats = recalibrated(model.module, model.variables, model.prepare(train.images))
  return {"running": accuracy(model.module, model.variables, x_val, val.labels),
          "per_batch": accuracy(model.module, model.variables, x_val, val.labels, True),
          "recalibrated": accuracy(model.module, stats, x_val, val.labels)}


def main(argv=None) -> int:
  from digitjax.errors import UserError

  p = argparse.ArgumentParser(prog="python -m experiments.batchnorm_eval",
                              description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="a training run's workdir")
  p.add_argument("--which", choices=("best", "latest"), default="best")
  args = p.parse_args(argv)
  try:
    result = compare(args.workdir, args.which)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for key, value in result.items():
    print(f"{key:>13}: {100 * value:.2f}% val accuracy")
  return 0


if __name__ == "__main__":
  sys.exit(main())
