"""The compiled programs of one config over its seed replicas, and what feeds them.

`Trainer` holds the model, the optimizer and the jitted programs: a block of training
steps (one lax.scan, the one way digitjax runs training steps), evaluation, the
plateau update. Replica k trains with seed config.seed + k; every array has a leading
replica axis, and one seed compiles to the very program it would without one.
`TrainData` places the training split (device or host) and yields each epoch's blocks of
steps in the seeded order `Trainer.epoch_order` draws.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from digitjax import data, distributed, models, optim, steps


def shuffle_rounds(n: int) -> int:
  """How many sorts jax.random.permutation does for n items (jax.random._shuffle)."""
  return int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))


def data_placement(config, nbytes: int) -> str:
  """"device" or "host" for a training split of nbytes (config.dataset.placement)."""
  if config.dataset.placement != "auto":
    return config.dataset.placement
  stats = jax.local_devices()[0].memory_stats() or {}  # None on CPU: host memory anyway
  limit = stats.get("bytes_limit", 0)
  return "host" if limit and nbytes > limit // 2 else "device"


# Training steps per jitted call when config.steps_per_dispatch is 0 ("auto"): the block
# length that trains fastest on CPU and GPU alike (experiments/BENCH.md: 1.3-1.6x faster
# epochs than one step per dispatch on XLA:CPU).
DEFAULT_STEPS_PER_DISPATCH = 100


def steps_per_dispatch(config) -> int:
  return config.steps_per_dispatch or DEFAULT_STEPS_PER_DISPATCH


def block_spans(start: int, steps: int, offset: int, per_dispatch: int, every: int):
  """(first batch, length) of the blocks that train batches start..steps-1 of an epoch
  whose first step is number offset + 1; a block ends at every checkpoint step."""
  b = start
  while b < steps:
    n = min(per_dispatch, steps - b)
    if every:
      n = min(n, every - (offset + b) % every)
    yield b, n
    b += n


def over_replicas(fn, num: int, in_axes):
  """`fn` over a leading replica (seed) axis: jax.vmap for several replicas.

  For one replica the plain function runs on the squeezed inputs, so a single-seed run
  compiles to exactly the program it would without any replica axis.
  """
  if num > 1:
    return jax.vmap(fn, in_axes=in_axes)

  def single(*args):
    args = [a if ax is None else jax.tree.map(lambda x: x[0], a)
            for a, ax in zip(args, in_axes)]
    return jax.tree.map(lambda x: x[None], fn(*args))
  return single


def select_replicas(mask, new, old):
  """Per replica: new where mask (shape (R,)) is true, else old."""
  def one(n, o):
    return jnp.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)
  return jax.tree.map(one, new, old)


def _block_program(config, model, tx, num_replicas, mesh):
  """jit(state, images, labels, order, b0, keys, active, n) -> (state, metrics (n, R)):
  steps b0 .. b0+n-1 of an epoch's order (R, steps, batch) in one lax.scan, each step
  gathering its batch from images by index. The one way digitjax runs training steps."""
  step = functools.partial(steps.train_step, model=model, tx=tx, config=config)
  batch = distributed.batch_sharded(mesh)

  def step_on_indices(state, all_images, all_labels, idx, key, active):
    images, labels = all_images[idx], all_labels[idx]
    if mesh.size > 1:  # data parallel: XLA partitions the step along the batch
      images = jax.lax.with_sharding_constraint(images, batch)
      labels = jax.lax.with_sharding_constraint(labels, batch)
    new, metrics = step(state, images, labels, key)
    return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state), metrics

  mapped = over_replicas(step_on_indices, num_replicas, (0, None, None, 0, 0, 0))

  def block(state, all_images, all_labels, order, b0, keys, active, n):
    def body(state, i):
      return mapped(state, all_images, all_labels, order[:, b0 + i], keys, active)
    return jax.lax.scan(body, state, jnp.arange(n, dtype=jnp.int32))

  return jax.jit(block, static_argnames="n", donate_argnums=0)


class Trainer:
  """The model, optimizer and jitted programs for one config, over its seed replicas.

  Replica k trains with seed config.seed + k; every array has a leading replica axis.
  """

  def __init__(self, config, steps_per_epoch: int):
    self.config = config
    self.steps_per_epoch = steps_per_epoch
    self.info = data.DATASETS[config.dataset.name]
    self.input_shape = data.image_shape(config)
    self.num_replicas = r = config.num_seeds
    self.mesh = distributed.data_mesh()
    self.model = models.build(config, self.info.num_classes)
    self.tx = optim.make(config, steps_per_epoch)
    self.plateau_tx = optim.plateau(config)
    self.schedule = optim.schedule(config, steps_per_epoch)
    self.reseed(config.seed)
    self.train_block = _block_program(config, self.model, self.tx, r, self.mesh)
    self._eval = jax.jit(over_replicas(
        functools.partial(steps.eval_step, model=self.model, config=config), r,
        (0, 0, None, None, None)))
    self._plateau = jax.jit(over_replicas(
        lambda st, v: self.plateau_tx.update({}, st, value=v)[1], r, (0, 0)))
    self._sort_keys = {}  # n -> jitted per-replica random sort keys of an epoch
    self._init = jax.jit(over_replicas(
        lambda k: steps.create_train_state(self.model, self.tx, self.plateau_tx,
                                           self.input_shape, k, config.model.init), r, (0,)))

  def reseed(self, first_seed: int) -> None:
    """Replica k now trains seed first_seed + k: new init, data-order and step keys for
    the same compiled programs (they take the keys as arguments), so a tool that times
    seeds one after another (experiments.speedrun) compiles once. self.config.seed is
    left as it was: the config names the run, self.seeds what the programs now draw."""
    self.seeds = [first_seed + k for k in range(self.num_replicas)]
    keys = jnp.stack([steps.seed_keys(s) for s in self.seeds])
    self.init_keys, self.data_keys, self.step_keys = keys[:, 0], keys[:, 1], keys[:, 2]

  def replicate(self, tree):
    """Places host or device arrays replicated on the data mesh (all processes)."""
    return jax.device_put(tree, distributed.replicated(self.mesh))

  def init_state(self) -> steps.TrainState:
    return self.replicate(self._init(self.init_keys))

  def abstract_state(self):
    """Shapes, dtypes and (replicated) shardings of the state: orbax's restore target."""
    sharding = distributed.replicated(self.mesh)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                        jax.eval_shape(self._init, self.init_keys))

  def epoch_order(self, epoch: int, n: int, batch_size: int) -> np.ndarray:
    """Per replica, an epoch's batch indices (R, steps, batch): seeded, remainder dropped.

    The order is jax.random.permutation(fold_in(data_key, epoch), n), bit for bit, but
    its sorts run on the host: XLA:CPU sorts 60,000 keys in ~45 ms (and 8 vmapped seeds
    in ~310 ms), numpy's stable argsort in ~3 ms. The random sort keys still come from
    jax.random, on device.
    """
    if n not in self._sort_keys:
      rounds = shuffle_rounds(n)

      def sort_keys(key, epoch):  # jax.random._shuffle's keys, round by round
        key = jax.random.fold_in(key, epoch)
        bits = []
        for _ in range(rounds):
          key, sub = jax.random.split(key)
          bits.append(jax.random.bits(sub, (n,), jnp.uint32))
        return jnp.stack(bits) if bits else jnp.zeros((0, n), jnp.uint32)
      self._sort_keys[n] = jax.jit(over_replicas(sort_keys, self.num_replicas, (0, None)))
    keys = np.asarray(self._sort_keys[n](self.data_keys, np.int32(epoch)))  # (R, rounds, n)
    steps = n // batch_size
    orders = np.empty((self.num_replicas, steps, batch_size), np.int32)
    for r in range(self.num_replicas):
      perm = np.arange(n, dtype=np.int32)
      for round_keys in keys[r]:  # lax.sort_key_val is stable; so is this argsort
        perm = perm[np.argsort(round_keys, kind="stable")]
      orders[r] = perm[: steps * batch_size].reshape(steps, batch_size)
    return orders

  def train_steps(self, state, images, labels, order, b: int, n: int, active):
    """n >= 1 steps from batch b of `order`; metrics get a leading axis of n."""
    return self.train_block(state, images, labels, order, np.int32(b), self.step_keys,
                            active, n=n)

  def compile_ahead(self, state, block, n: int, active, eval_split: data.Split) -> None:
    """Compiles train_steps(state, *block, n, active) and evaluate's program for
    eval_split without running either; jax.jit's cache then serves those calls, so a
    tool that times runs (experiments.speedrun) keeps compilation off its clock."""
    images, labels, order, b = block
    self.train_block.lower(state, images, labels, order, np.int32(b), self.step_keys,
                           active, n=n).compile()
    batch = next(padded_batches(eval_split, self.config.eval_batch_size))
    self._eval.lower(state.params, state.batch_stats, *self.replicate(batch)).compile()

  def plateau_update(self, state: steps.TrainState, values) -> steps.TrainState:
    plateau = self._plateau(state.plateau, jnp.asarray(values, jnp.float32))
    return state.replace(plateau=self.replicate(plateau))

  def learning_rates(self, state: steps.TrainState) -> np.ndarray:
    host = distributed.to_host((state.step, state.plateau.scale))
    return np.array([float(self.schedule(s)) for s in host[0]]) * host[1]

  def evaluate(self, state: steps.TrainState, split: data.Split):
    """Per replica: mean loss and accuracy over a split (arrays (R,)), predictions (R, N)."""
    sums = dict(loss=0.0, correct=0.0, count=0.0)
    preds = []
    for images, labels, mask in padded_batches(split, self.config.eval_batch_size):
      out, p = self._eval(state.params, state.batch_stats,
                          *self.replicate((images, labels, mask)))
      out, p = distributed.to_host((out, p))
      for k in sums:
        sums[k] = sums[k] + out[k].astype(np.float64)
      preds.append(p[:, :int(mask.sum())])
    metrics = dict(loss=sums["loss"] / sums["count"], accuracy=sums["correct"] / sums["count"])
    return metrics, np.concatenate(preds, axis=1)


def padded_batches(split: data.Split, bs: int):
  """(images, labels, mask) of bs examples each; the last one padded, its mask 0 there."""
  for start in range(0, len(split), bs):
    images, labels = split.images[start:start + bs], split.labels[start:start + bs]
    n = len(labels)
    mask = np.zeros(bs, np.float32)
    mask[:n] = 1
    if n < bs:
      images = np.concatenate([images, np.zeros((bs - n, *images.shape[1:]), np.uint8)])
      labels = np.concatenate([labels, np.zeros(bs - n, np.int32)])
    yield images, labels, mask


class TrainData:
  """The training split and where it lives; yields each epoch's blocks of steps.

  On the device (dataset.placement), a block reads its batches from the whole split by
  index. In host memory, a block's batches are gathered on the host and copied over one
  block ahead (device_put is asynchronous), side by side with the order that picks them:
  the same program, on fewer images.
  """

  def __init__(self, trainer: Trainer, split: data.Split):
    self.trainer, self.n = trainer, len(split)
    self.on_host = data_placement(trainer.config, split.images.nbytes) == "host"
    if self.on_host:
      self.images, self.labels = split.images, split.labels
    else:
      self.images, self.labels = trainer.replicate((split.images, split.labels))

  def blocks(self, epoch: int, start: int):
    """(b, n, (images, labels, order, b0)) for Trainer.steps, from batch `start` on."""
    t, config = self.trainer, self.trainer.config
    order = t.epoch_order(epoch, self.n, config.batch_size)
    spans = block_spans(start, order.shape[1], (epoch - 1) * t.steps_per_epoch,
                        steps_per_dispatch(config), config.checkpoint_every_steps)
    if not self.on_host:
      order = t.replicate(order)
      for b, n in spans:
        yield b, n, (self.images, self.labels, order, b)
      return
    ahead = None  # the next block, already on its way to the device
    for b, n in spans:
      idx = order[:, b:b + n]  # (R, n, batch)
      local = np.arange(idx.size, dtype=np.int32).reshape(idx.shape)
      block = (b, n, t.replicate((self.images[idx.reshape(-1)], self.labels[idx.reshape(-1)],
                                  local)) + (0,))
      if ahead:
        yield ahead
      ahead = block
    if ahead:
      yield ahead
