"""K seeds in one program: the pure train_step vmapped over a leading axis of states.

Why: the perceptron and small MLPs leave most of the CPU idle per step (tiny matmuls,
fixed dispatch cost); vmapping K independent runs into one jitted step turns K small
matmuls into batched ones and pays dispatch once. Each seed keeps its own parameters,
data order and dropout keys, so run k of the vmapped program equals a sequential run
with seed k (tests/test_bench.py checks it).
"""
from __future__ import annotations

import functools

import jax

from digitjax import train


def _step(trainer):
  return functools.partial(train.train_step, model=trainer.model, tx=trainer.tx,
                           config=trainer.config)


def make_vmapped_step(trainer):
  """jit(vmap(step)) over (state, idx, key); the device-resident images are shared."""
  step = _step(trainer)

  def one(state, images, labels, idx, key):
    return step(state, images[idx], labels[idx], key)

  return jax.jit(jax.vmap(one, in_axes=(0, None, None, 0, 0)), donate_argnums=0)


def seed_trainers(config, k: int, steps_per_epoch: int):
  """One Trainer per seed config.seed + i (each owns its init, data and step keys)."""
  out = []
  for i in range(k):
    c = config.copy_and_resolve_references()
    c.seed = config.seed + i
    out.append(train.Trainer(c, steps_per_epoch))
  return out


def stacked_init(trainers):
  """States of all seeds stacked on a leading axis (one init per seed, as sequential)."""
  states = [t.init_state() for t in trainers]
  return jax.tree.map(lambda *xs: jax.numpy.stack(xs), *states)


def run_vmapped(trainers, images, labels, epoch: int, steps: int, step_fn=None, state=None):
  """`steps` steps of epoch `epoch` for all seeds at once; returns (stacked state, step_fn)."""
  import jax.numpy as jnp

  step_fn = step_fn or make_vmapped_step(trainers[0])
  state = stacked_init(trainers) if state is None else state
  bs = trainers[0].config.batch_size
  orders = jnp.stack([t.epoch_order(epoch, len(labels), bs) for t in trainers], axis=1)
  keys = jnp.stack([t.step_key for t in trainers])
  for b in range(steps):
    state, _ = step_fn(state, images, labels, orders[b], keys)
  return state, step_fn


def run_sequential(trainers, images, labels, epoch: int, steps: int, states=None):
  """The same steps, one seed after another (one compiled step: the seed is not in it)."""
  states = [t.init_state() for t in trainers] if states is None else states
  step_fn = trainers[0].train_on_indices
  out = []
  for t, s in zip(trainers, states):
    order = t.epoch_order(epoch, len(labels), t.config.batch_size)
    for b in range(steps):
      s, _ = step_fn(s, images, labels, order[b], t.step_key)
    out.append(s)
  return out
