"""When and what the epoch loop checkpoints: the latest state and the best one.

Checkpoints (digitjax.checkpoints) stores and restores; `Saves` decides. Each checkpoint's
meta holds the loop's state and the config's fingerprint, so a resume restores exactly
where the run was, and a checkpoint of another config is refused.
"""
from __future__ import annotations

import sys

import jax.numpy as jnp
import numpy as np

from digitjax import checkpoints, distributed, fingerprint, steps
from digitjax import trainer as trainer_lib
from digitjax.callbacks import LoopState, holds_best


def step_of(state) -> int:
  """The step a checkpoint of `state` is saved as: the furthest seed's. A seed stopped
  early no longer advances its step, so seed 0's would stall the latest checkpoint
  (orbax keeps the step it already has) while the other seeds train on."""
  return int(np.max(distributed.to_host(state.step)))


class Saves:
  """The workdir's checkpoints and the best state not yet saved.

  The latest checkpoint is written after the best one if that changed since the last
  save: the two on disk always agree, so a run resumed from `latest` has its best state.
  """

  def __init__(self, workdir: str, trainer):
    self.ckpts = checkpoints.Checkpoints(workdir)
    self.abstract = trainer.abstract_state()
    self.replicate = trainer.replicate
    self.fingerprint = fingerprint.fingerprint(trainer.config)
    self.check = fingerprint.checkpoint_check(trainer.config)
    self.steps_per_epoch = trainer.steps_per_epoch
    self.best_state, self.best_unsaved = None, False
    self.replace_step = None  # the step of a checkpoint saved at an epoch's end, unvalidated

  def restore(self) -> tuple[steps.TrainState, LoopState] | None:
    restored = self.ckpts.restore_latest(self.abstract, self.check)
    if restored is None:
      return None
    state, loop = self.replicate(restored[0]), LoopState.from_meta(restored[1])
    if loop.step_in_epoch and loop.step_in_epoch == self.steps_per_epoch:
      self.replace_step = step_of(state)  # the epoch's end, saved again once validated
    best = self.ckpts.restore_best(self.abstract, self.check)
    if best is None and holds_best(loop):  # the best lost, and the latest is that state
      self.ckpts.save_best(step_of(state), state, restored[1])
      print(f"note: the best checkpoint was missing or unreadable; rebuilt it from the "
            f"latest one, which holds the best state (epoch "
            f"{', '.join(map(str, loop.best_epoch))}).", file=sys.stderr)
      best = restored
    self.best_state = self.replicate(best[0]) if best else None
    return state, loop

  def new_best(self, state: steps.TrainState, improved: np.ndarray) -> None:
    if improved.any():
      old = state if self.best_state is None else self.best_state
      self.best_state = trainer_lib.select_replicas(jnp.asarray(improved), state, old)
      self.best_unsaved = True

  def save(self, state: steps.TrainState, loop: LoopState, step: int | None = None) -> None:
    step = step_of(state) if step is None else step
    meta = {**loop.meta(), fingerprint.META_KEY: self.fingerprint}
    again = {"replace": True} if step == self.replace_step else {}
    if self.best_unsaved:
      self.ckpts.save_best(step, self.best_state, meta, **again)
      self.best_unsaved = False
    self.ckpts.save_latest(step, state, meta, **again)
