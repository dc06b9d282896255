"""What the epoch loop knows besides the model's state, and Keras's callbacks on it.

`LoopState` is the loop's typed state (best epochs, early-stopping waits, which seeds
still train, the history); checkpoints carry it as JSON. The callbacks below read an
epoch's records and update it as Keras's would: the best epoch (restore_best_weights),
EarlyStopping and ReduceLROnPlateau, per seed replica. A trainer (digitjax.trainer)
describes the replicas.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from digitjax import distributed
from digitjax.errors import NonFiniteLoss


@dataclasses.dataclass
class EpochSums:
  """Per replica, the running sums of an epoch's training metrics (and its seconds)."""
  loss: list
  accuracy: list
  steps: list
  skipped: list
  seconds: float = 0.0

  @classmethod
  def zeros(cls, r: int) -> "EpochSums":
    return cls(loss=[0.0] * r, accuracy=[0.0] * r, steps=[0] * r, skipped=[0] * r)

  def means(self, k: int) -> tuple[float, float]:
    steps = max(self.steps[k], 1)
    return self.loss[k] / steps, self.accuracy[k] / steps

  def running_means(self) -> tuple[float, float]:
    """The epoch's mean training loss and accuracy so far, over the replicas that
    trained a step (the progress line's)."""
    means = [self.means(k) for k in range(len(self.steps)) if self.steps[k]]
    if not means:
      return float("nan"), float("nan")
    return float(np.mean([m[0] for m in means])), float(np.mean([m[1] for m in means]))


@dataclasses.dataclass
class LoopState:
  """What the loop knows besides the TrainState; checkpoints carry it as JSON (`meta`).

  Per replica (seed): the best monitored value, its epoch, the epochs waited since
  (EarlyStopping's patience), whether it still trains, how many epochs it ran.
  """
  epoch: int = 0  # epochs completed
  step_in_epoch: int = 0  # batches of the next epoch already trained (a mid-epoch save)
  partial: EpochSums | None = None  # that epoch's sums so far
  history: list = dataclasses.field(default_factory=list)  # metrics.jsonl's records
  train_seconds: float = 0.0
  best: list = dataclasses.field(default_factory=list)
  best_epoch: list = dataclasses.field(default_factory=list)
  wait: list = dataclasses.field(default_factory=list)
  active: list = dataclasses.field(default_factory=list)
  epochs_run: list = dataclasses.field(default_factory=list)

  @classmethod
  def fresh(cls, r: int) -> "LoopState":
    return cls(best=[None] * r, best_epoch=[0] * r, wait=[0] * r, active=[True] * r,
               epochs_run=[0] * r)

  @classmethod
  def from_meta(cls, meta: dict) -> "LoopState":
    """From a checkpoint's meta (which also holds its config's fingerprint)."""
    known = {f.name for f in dataclasses.fields(cls)}
    loop = cls(**{k: v for k, v in meta.items() if k in known})
    if loop.partial is not None:
      loop.partial = EpochSums(**loop.partial)
    return loop

  def meta(self) -> dict:
    return dataclasses.asdict(self)


def tally(sums: EpochSums, loop: LoopState, first: int, metrics, trainer, epoch: int,
           workdir: str) -> None:
  """Adds a block's per-step metrics (steps first, first+1, ...) to the epoch's sums,
  replica by replica; a non-finite step stops the run (on_nonfinite=stop) or counts."""
  spe, seeds = trainer.steps_per_epoch, trainer.seeds
  for j in range(len(metrics["loss"])):
    for k in range(trainer.num_replicas):
      if not loop.active[k]:
        continue
      if not metrics["finite"][j][k]:
        if trainer.config.on_nonfinite == "stop":
          i = first + j
          seed = f" of seed {seeds[k]}" if len(seeds) > 1 else ""
          raise NonFiniteLoss(
              f"non-finite loss or gradient at step {i} (epoch {epoch}, batch "
              f"{i - (epoch - 1) * spe}){seed}; training stopped and "
              f"the last good checkpoint in {workdir} is kept. Lower the learning "
              "rate, or set --config.on_nonfinite=skip to skip such steps.")
        sums.skipped[k] += 1
        continue
      sums.loss[k] += float(metrics["loss"][j][k])
      sums.accuracy[k] += float(metrics["accuracy"][j][k])
      sums.steps[k] += 1


def epoch_records(trainer, loop: LoopState, epoch: int, sums: EpochSums,
                  val_metrics: dict, lrs) -> list[dict]:
  """metrics.jsonl's records of an epoch, one per replica still training; without a
  validation set (val_metrics None) they hold no val_loss and val_accuracy keys."""
  records = []
  for k in range(trainer.num_replicas):
    if loop.active[k]:
      loss, accuracy = sums.means(k)
      val = {} if val_metrics is None else dict(
          val_loss=float(val_metrics["loss"][k]),
          val_accuracy=float(val_metrics["accuracy"][k]))
      records.append(dict(
          epoch=epoch, seed=trainer.seeds[k], loss=loss, accuracy=accuracy, **val,
          lr=float(lrs[k]), time=sums.seconds, skipped_steps=sums.skipped[k]))
  return records


def _improved(value, best, monitor: str, min_delta: float = 0.0) -> bool:
  if best is None:
    return True
  return value < best - min_delta if monitor == "val_loss" else value > best + min_delta


def track_best(loop: LoopState, k: int, epoch: int, value: float, monitor: str,
               es) -> tuple[bool, bool]:
  """Updates seed k's best epoch and early-stopping wait; returns (new best, stop now).

  Without early stopping the best epoch is the one with the best monitor value. With it,
  it is Keras's `EarlyStopping(restore_best_weights=True)` best: the last epoch that
  improved the monitor by more than `min_delta`, the weights Keras would restore (B6a-c
  published those). A later epoch that is better by less than `min_delta` neither resets
  the patience nor becomes the best checkpoint.
  Without a validation set (value None) every epoch is the best so far: the last one is
  kept (config.validate refuses early stopping there).
  `es` is config.early_stopping.
  """
  min_delta = es.min_delta if es.enabled else 0.0
  if value is None:
    loop.best_epoch[k], loop.wait[k] = epoch, 0
    return True, False
  if _improved(value, loop.best[k], monitor, min_delta):
    loop.best[k], loop.best_epoch[k], loop.wait[k] = value, epoch, 0
    return True, False
  if not es.enabled:
    return False, False
  loop.wait[k] += 1
  return False, loop.wait[k] >= es.patience


def early_stopping(trainer, loop: LoopState, records: list[dict]) -> np.ndarray:
  """Keras's EarlyStopping (and the best epoch) per replica; returns which improved."""
  config, r = trainer.config, trainer.num_replicas
  monitor, es = config.monitor, config.early_stopping
  improved = np.zeros(r, bool)
  for record in records:
    k = trainer.seeds.index(record["seed"])
    loop.epochs_run[k] = record["epoch"]
    improved[k], stop = track_best(loop, k, record["epoch"], record.get(monitor), monitor,
                                   es)
    if stop:
      loop.active[k] = False
      if distributed.is_main_process():
        print(f"Early stopping{' seed %d' % record['seed'] if r > 1 else ''}: no "
              f"{monitor} improvement of {es.min_delta} for {es.patience} "
              f"epochs; best epoch {loop.best_epoch[k]}.")
  return improved


def reduce_lr_on_plateau(trainer, state, val_metrics: dict):
  """Keras's ReduceLROnPlateau, stepped once per epoch on config.monitor."""
  config = trainer.config
  if not config.reduce_on_plateau.enabled:
    return state
  sign = 1.0 if config.monitor == "val_loss" else -1.0
  return trainer.plateau_update(state, sign * val_metrics[config.monitor[4:]])


def check_skipped(records: list[dict], steps_per_epoch: int, workdir: str,
                  several: bool) -> None:
  """on_nonfinite=skip: an epoch that skipped most of its steps is no longer learning."""
  for record in records:
    if 2 * record["skipped_steps"] > steps_per_epoch:
      seed = f"seed {record['seed']} " if several else ""
      raise NonFiniteLoss(
          f"{seed}skipped {record['skipped_steps']} of the "
          f"{steps_per_epoch} steps of epoch {record['epoch']} for a non-finite loss or "
          "gradient (on_nonfinite=skip): more than half, so training stopped rather than "
          "finish on parameters that no longer learn. The checkpoints saved in "
          f"{workdir} before it are kept. Lower the learning rate.")


def holds_best(loop: LoopState) -> bool:
  """True if the state saved with `loop` (a checkpoint's) is every seed's best state: it
  was saved at an epoch's end that is each seed's best epoch."""
  return (loop.epoch > 0 and loop.step_in_epoch == 0 and bool(loop.best_epoch)
          and all(b == e for b, e in zip(loop.best_epoch, loop.epochs_run)))
