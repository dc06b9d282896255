"""K seeds in one program vs K runs one after another, for the benchmark and its test.

The vmapped path is digitjax's own: a Trainer with config.num_seeds=K keeps K states on a
leading replica axis and vmaps the pure train step over it inside one jit. Each seed keeps
its own parameters, data order and dropout keys, so replica k equals a separate run with
seed config.seed + k (tests/test_bench.py, tests/test_scale.py).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from digitjax import trainer as trainer_lib


@dataclasses.dataclass
class SeedRuns:
  together: trainer_lib.Trainer  # num_seeds = K
  alone: list[trainer_lib.Trainer]  # one per seed, num_seeds = 1


def seed_trainers(config, k: int, steps_per_epoch: int) -> SeedRuns:
  together = config.copy_and_resolve_references()
  together.num_seeds = k
  alone = []
  for i in range(k):
    c = config.copy_and_resolve_references()
    c.seed, c.num_seeds = config.seed + i, 1
    alone.append(trainer_lib.Trainer(c, steps_per_epoch))
  return SeedRuns(trainer_lib.Trainer(together, steps_per_epoch), alone)


def _steps(trainer, state, images, labels, epoch, steps):
  order = trainer.epoch_order(epoch, len(labels), trainer.config.batch_size)
  active = trainer.replicate(np.ones(trainer.num_replicas, bool))
  state, _ = trainer.train_steps(state, images, labels, order, 0, steps, active)
  return state


def run_vmapped(runs: SeedRuns, images, labels, epoch: int, steps: int, state=None):
  """`steps` steps of epoch `epoch` for all seeds at once; the stacked state."""
  t = runs.together
  return _steps(t, t.init_state() if state is None else state, images, labels, epoch, steps)


def run_sequential(runs: SeedRuns, images, labels, epoch: int, steps: int, states=None):
  """The same steps, one seed after another; a list of states (replica axis of 1)."""
  states = [t.init_state() for t in runs.alone] if states is None else states
  return [_steps(t, s, images, labels, epoch, steps) for t, s in zip(runs.alone, states)]
