"""Training and evaluation, top to bottom: state, loss, steps, epoch loop, final test.

The steps are pure functions of (state, batch, key). They never touch the host, so the
same code is jitted, vmapped over seeds (config.num_seeds replicas in one program), and
partitioned over devices (digitjax.distributed); under pmap/shard_map, pass `axis_name`
and gradients and metrics are averaged over that named axis.

Everything random derives from config.seed: parameters from one key, the data order of
epoch e from fold_in(data key, e), dropout and augmentation of step s from
fold_in(step key, s). A run resumed from a checkpoint therefore continues with exactly
the numbers an uninterrupted run would have produced.

The loop (`train_and_evaluate`) owns every side effect: checkpoints, logs, plots,
early stopping and ReduceLROnPlateau, signals.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import signal
import sys
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from digitjax import augment, checkpoints, ctrl_c, data, distributed, models
from digitjax import optim, progress, provenance
from digitjax import reporting
from digitjax import workdir as workdir_lib
from digitjax.errors import UserError


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  plateau: Any  # optax.contrib.reduce_on_plateau state; its .scale multiplies updates


class NonFiniteLoss(UserError):
  pass


def seed_keys(seed: int):
  """(init, data, step) keys: independent streams from one seed."""
  return jax.random.split(jax.random.key(seed), 3)


def create_train_state(model, tx, plateau_tx, input_shape, init_key) -> TrainState:
  x = jnp.zeros((1, *input_shape), jnp.float32)
  variables = model.init({"params": init_key}, x, train=False)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=tx.init(params), plateau=plateau_tx.init(params))


def compute_loss(logits, labels, loss: str, output_activation: str, clip: float = 0.0):
  """Per-example loss.

  With a softmax output this is the usual softmax cross-entropy. With a sigmoid output
  (report A's perceptron) it is what Keras's categorical_crossentropy does to sigmoid
  outputs: normalise them to sum to one, then take -log of the true class.
  binary_cross_entropy is Keras's binary_crossentropy on one-hot targets: each output an
  independent sigmoid, the ten per-class losses averaged (it ignores output_activation).
  clip > 0 is standalone Keras 2.2's categorical_crossentropy (config.loss_clip): the
  probabilities are clipped to [clip, 1 - clip] before the log, so an example whose true
  class has probability below clip (or above 1 - clip) gives no gradient at all.
  """
  onehot = jax.nn.one_hot(labels, logits.shape[-1])
  if loss == "binary_cross_entropy":
    return (optax.sigmoid_binary_cross_entropy(logits, onehot)).mean(-1)
  if output_activation == "softmax":
    log_probs = jax.nn.log_softmax(logits)
    probs = jnp.exp(log_probs)
  else:
    probs = jax.nn.sigmoid(logits)
    log_probs = jax.nn.log_sigmoid(logits) - jnp.log(probs.sum(-1, keepdims=True))
  if loss == "cross_entropy" and clip:
    probs = probs if output_activation == "softmax" else jnp.exp(log_probs)
    return -(onehot * jnp.log(jnp.clip(probs, clip, 1.0 - clip))).sum(-1)
  if loss == "cross_entropy":
    return -(onehot * log_probs).sum(-1)
  return jnp.square(onehot - probs).mean(-1)


def to_float(images):
  """uint8 [0, 255] -> float32 [0, 1], inside the jit so only uint8 lives on device."""
  return images.astype(jnp.float32) / 255.0


def train_step(state: TrainState, images, labels, key, *, model, tx, config,
               axis_name=None):
  """One optimizer step: (state, batch, key) -> (state, metrics). Pure."""
  key = jax.random.fold_in(key, state.step)
  dropout_key, augment_key = jax.random.split(key)
  aux_weight = models.settings(config.model).get("aux_weight", 0.0)
  x = augment.apply(to_float(images), augment_key, config.augment)

  def loss_fn(params):
    logits, mutated = model.apply(
        {"params": params, "batch_stats": state.batch_stats}, x, train=True,
        rngs={"dropout": dropout_key}, mutable=["batch_stats", "losses", "aux"])
    per_example = lambda out: compute_loss(out, labels, config.loss,
                                           config.model.output_activation,
                                           config.loss_clip).mean()
    data_loss = per_example(logits)
    # Auxiliary heads (GoogLeNet) sow their logits into 'aux' in training only; their
    # losses join the objective with weight model.aux_weight (GoogLeNet's own field),
    # and are absent in eval.
    aux = sum(per_example(a) for a in jax.tree.leaves(mutated.get("aux", {})))
    penalty = sum(jnp.sum(v) for v in jax.tree.leaves(mutated.get("losses", {})))
    loss = data_loss + aux_weight * aux + penalty
    return loss, (logits, mutated.get("batch_stats", {}))

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  accuracy = (logits.argmax(-1) == labels).mean()
  if axis_name:
    grads, loss, accuracy = jax.lax.pmean((grads, loss, accuracy), axis_name)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  updates = optax.tree.scale(state.plateau.scale, updates)
  new_state = state.replace(step=state.step + 1,
                            params=optax.apply_updates(state.params, updates),
                            batch_stats=batch_stats, opt_state=opt_state)
  finite = jnp.isfinite(loss) & jnp.isfinite(optax.global_norm(grads))
  # A non-finite step changes nothing but the step counter; the loop decides to stop.
  new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state,
                           state.replace(step=state.step + 1))
  return new_state, dict(loss=loss, accuracy=accuracy, finite=finite)


def eval_step(params, batch_stats, images, labels, mask, *, model, config):
  """Sums of loss and correct predictions over the unmasked examples, and predictions."""
  logits = model.apply({"params": params, "batch_stats": batch_stats}, to_float(images),
                       train=False)
  loss = compute_loss(logits, labels, config.loss, config.model.output_activation,
                      config.loss_clip)
  preds = logits.argmax(-1)
  return dict(loss=(loss * mask).sum(), correct=((preds == labels) * mask).sum(),
              count=mask.sum()), preds


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


# config.steps_per_dispatch=0 ("auto"): the block length that trains fastest on the backend
# (experiments/BENCH.md: 1.3-1.6x faster epochs than one step per dispatch on XLA:CPU).
AUTO_STEPS_PER_DISPATCH = {"cpu": 100, "gpu": 100, "cuda": 100, "rocm": 100, "tpu": 100}


def steps_per_dispatch(config) -> int:
  return config.steps_per_dispatch or AUTO_STEPS_PER_DISPATCH.get(jax.default_backend(), 100)


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


def _select(mask, new, old):
  """Per replica: new where mask (shape (R,)) is true, else old."""
  def one(n, o):
    return jnp.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)
  return jax.tree.map(one, new, old)


def _block_program(config, model, tx, num_replicas, mesh):
  """jit(state, images, labels, order, b0, keys, active, n) -> (state, metrics (n, R)):
  steps b0 .. b0+n-1 of an epoch's order (R, steps, batch) in one lax.scan, each step
  gathering its batch from images by index. The one way digitjax runs training steps."""
  step = functools.partial(train_step, model=model, tx=tx, config=config)
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
    self.seeds = [config.seed + k for k in range(r)]
    self.mesh = distributed.data_mesh()
    self.model = models.build(config, self.info.num_classes)
    self.tx = optim.make(config, steps_per_epoch)
    self.plateau_tx = optim.plateau(config)
    self.schedule = optim.schedule(config, steps_per_epoch)
    keys = jnp.stack([seed_keys(s) for s in self.seeds])
    self.init_keys, self.data_keys, self.step_keys = keys[:, 0], keys[:, 1], keys[:, 2]
    self.train_block = _block_program(config, self.model, self.tx, r, self.mesh)
    self._eval = jax.jit(over_replicas(
        functools.partial(eval_step, model=self.model, config=config), r,
        (0, 0, None, None, None)))
    self._plateau = jax.jit(over_replicas(
        lambda st, v: self.plateau_tx.update({}, st, value=v)[1], r, (0, 0)))
    self._sort_keys = {}  # n -> jitted per-replica random sort keys of an epoch
    self._init = jax.jit(over_replicas(
        lambda k: create_train_state(self.model, self.tx, self.plateau_tx, self.input_shape,
                                     k), r, (0,)))

  def replicate(self, tree):
    """Places host or device arrays replicated on the data mesh (all processes)."""
    return jax.device_put(tree, distributed.replicated(self.mesh))

  def init_state(self) -> TrainState:
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

  def steps(self, state, images, labels, order, b: int, n: int, active):
    """n >= 1 steps from batch b of `order`; metrics get a leading axis of n."""
    return self.train_block(state, images, labels, order, np.int32(b), self.step_keys,
                            active, n=n)

  def plateau_update(self, state: TrainState, values) -> TrainState:
    plateau = self._plateau(state.plateau, jnp.asarray(values, jnp.float32))
    return state.replace(plateau=self.replicate(plateau))

  def learning_rates(self, state: TrainState) -> np.ndarray:
    host = distributed.to_host((state.step, state.plateau.scale))
    return np.array([float(self.schedule(s)) for s in host[0]]) * host[1]

  def evaluate(self, state: TrainState, split: data.Split):
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

  def running_loss(self) -> float:
    """The epoch's mean training loss so far, over the replicas that trained a step."""
    losses = [self.means(k)[0] for k in range(len(self.steps)) if self.steps[k]]
    return float(np.mean(losses)) if losses else float("nan")


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
    """From a checkpoint's meta, also one written before LoopState (the same keys)."""
    known = {f.name for f in dataclasses.fields(cls)}
    loop = cls(**{k: v for k, v in meta.items() if k in known})
    if loop.partial is not None:
      loop.partial = EpochSums(**loop.partial)
    return loop

  def meta(self) -> dict:
    return dataclasses.asdict(self)


def _improved(value, best, monitor: str, min_delta: float = 0.0) -> bool:
  if best is None:
    return True
  return value < best - min_delta if monitor == "val_loss" else value > best + min_delta


def track_best(loop: LoopState, k: int, epoch: int, value: float, monitor: str,
               early_stopping) -> tuple[bool, bool]:
  """Updates seed k's best epoch and early-stopping wait; returns (new best, stop now).

  Without early stopping the best epoch is the one with the best monitor value. With it,
  it is Keras's `EarlyStopping(restore_best_weights=True)` best: the last epoch that
  improved the monitor by more than `min_delta`, the weights Keras would restore (B6a-c
  published those). A later epoch that is better by less than `min_delta` neither resets
  the patience nor becomes the best checkpoint.
  """
  es = early_stopping
  min_delta = es.min_delta if es.enabled else 0.0
  if _improved(value, loop.best[k], monitor, min_delta):
    loop.best[k], loop.best_epoch[k], loop.wait[k] = value, epoch, 0
    return True, False
  if not es.enabled:
    return False, False
  loop.wait[k] += 1
  return False, loop.wait[k] >= es.patience


class _Signals:
  """SIGTERM / SIGINT / SIGHUP set a flag; the loop checkpoints at the next step and exits.

  SIGHUP is what a closed terminal (or a dropped ssh session) sends: it would otherwise
  kill the run with no checkpoint. A run started under nohup has it ignored, and keeps it
  so: closing that terminal is meant to leave the run going.
  """

  def __init__(self):
    self.received = None
    self._old = {}

  def __enter__(self):
    for sig in ctrl_c.STOPS:
      if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
        continue  # nohup
      try:
        self._old[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread (e.g. inside some test runners)
        pass
    return self

  def _handle(self, signum, frame):
    if self.received is not None and signum == signal.SIGINT:
      ctrl_c.interrupt(frame)  # a second Ctrl-C means now (and never in a gc callback)
      return
    self.received = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


def _step_of(state) -> int:
  """The step a checkpoint of `state` is saved as: the furthest seed's. A seed stopped
  early no longer advances its step, so seed 0's would stall the latest checkpoint
  (orbax keeps the step it already has) while the other seeds train on."""
  return int(np.max(distributed.to_host(state.step)))


def _clock_in(clock: list, loop: "LoopState", sums: "EpochSums") -> None:
  """Adds the seconds since clock[0] (the epoch's start, or the last call) to the
  epoch's time and to train_seconds, and restarts the clock."""
  now = time.time()
  sums.seconds += now - clock[0]
  loop.train_seconds += now - clock[0]
  clock[0] = now


class Saves:
  """The workdir's checkpoints and the best state not yet saved.

  The latest checkpoint is written after the best one if that changed since the last
  save: the two on disk always agree, so a run resumed from `latest` has its best state.
  """

  def __init__(self, workdir: str, trainer: Trainer):
    self.ckpts = checkpoints.Checkpoints(workdir)
    self.abstract = trainer.abstract_state()
    self.replicate = trainer.replicate
    self.identity = workdir_lib.identity(trainer.config)
    self.check = identity_check(trainer.config)
    self.steps_per_epoch = trainer.steps_per_epoch
    self.best_state, self.best_unsaved = None, False
    self.replace_step = None  # the step of a checkpoint saved at an epoch's end, unvalidated

  def restore(self) -> tuple[TrainState, LoopState] | None:
    restored = self.ckpts.restore_latest(self.abstract, self.check)
    if restored is None:
      return None
    state, loop = self.replicate(restored[0]), LoopState.from_meta(restored[1])
    if loop.step_in_epoch and loop.step_in_epoch == self.steps_per_epoch:
      self.replace_step = _step_of(state)  # the epoch's end, saved again once validated
    best = self.ckpts.restore_best(self.abstract, self.check)
    if best is None and holds_best(loop):  # the best lost, and the latest is that state
      self.ckpts.save_best(_step_of(state), state, restored[1])
      print(f"note: the best checkpoint was missing or unreadable; rebuilt it from the "
            f"latest one, which holds the best state (epoch "
            f"{', '.join(map(str, loop.best_epoch))}).", file=sys.stderr)
      best = restored
    self.best_state = self.replicate(best[0]) if best else None
    return state, loop

  def new_best(self, state: TrainState, improved: np.ndarray) -> None:
    if improved.any():
      self.best_state = _select(jnp.asarray(improved), state,
                                state if self.best_state is None else self.best_state)
      self.best_unsaved = True

  def save(self, state: TrainState, loop: LoopState, step: int | None = None) -> None:
    step = _step_of(state) if step is None else step
    meta = {**loop.meta(), "config_fingerprint": self.identity}
    again = {"replace": True} if step == self.replace_step else {}
    if self.best_unsaved:
      self.ckpts.save_best(step, self.best_state, meta, **again)
      self.best_unsaved = False
    self.ckpts.save_latest(step, state, meta, **again)


def identity_check(config, reading: bool = False):
  """check(meta, where) for Checkpoints' restores: refuses a checkpoint whose meta records
  another config (checkpoints written before the fingerprint pass). A reader (eval,
  predict, load) leaves out the fields that change no figure, and gives its own advice."""
  advice, ignore = (workdir_lib.EVAL_ADVICE, workdir_lib.EVAL_ONLY_FIELDS) if reading \
      else ("", ())

  def check(meta: dict, where: str) -> None:
    if "config_fingerprint" in meta:
      workdir_lib.check_identity(meta["config_fingerprint"], config, where, advice, ignore)
  return check


def holds_best(loop: LoopState) -> bool:
  """True if the state saved with `loop` (a checkpoint's) is every seed's best state: it
  was saved at an epoch's end that is each seed's best epoch."""
  return (loop.epoch > 0 and loop.step_in_epoch == 0 and bool(loop.best_epoch)
          and all(b == e for b, e in zip(loop.best_epoch, loop.epochs_run)))


def _tally(sums: EpochSums, loop: LoopState, first: int, metrics, trainer, epoch: int,
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


def train_epoch(trainer: Trainer, state, loop: LoopState, train_data: TrainData, epoch: int,
                signals: _Signals, saves: Saves, clock: list, workdir: str):
  """Trains the rest of epoch `epoch`, block by block; returns (state, its sums), the
  sums None when a signal stopped it (after a checkpoint). Signals are checked after
  every block and at the epoch's end, before validation: a stop there saves the trained
  epoch with step_in_epoch = steps_per_epoch, and a resume starts at its validation. Step
  metrics come to the host every log_every_steps, at checkpoint steps and on signals:
  the only syncs, and the only moments the progress line (a terminal's) moves."""
  config, spe = trainer.config, trainer.steps_per_epoch
  every = config.checkpoint_every_steps
  sums = loop.partial or EpochSums.zeros(trainer.num_replicas)
  active = trainer.replicate(np.array(loop.active))
  pending, pending_steps = [], 0
  last = loop.history[-1]["time"] if loop.history else None
  with progress.EpochProgress(epoch, config.num_epochs, spe, loop.step_in_epoch,
                              last) as bar:
    for b, n, block in train_data.blocks(epoch, loop.step_in_epoch):
      state, metrics = trainer.steps(state, *block, n, active)
      first = (epoch - 1) * spe + b + 1
      pending.append((first, metrics))
      pending_steps += n
      at_checkpoint = bool(every and (first + n - 1) % every == 0)
      if pending_steps >= config.log_every_steps or signals.received or at_checkpoint:
        for f, m in pending:
          _tally(sums, loop, f, distributed.to_host(m), trainer, epoch, workdir)
        pending, pending_steps = [], 0
        bar.update(b + n, sums.running_loss())
      if (signals.received or at_checkpoint) and b + n < spe:
        _clock_in(clock, loop, sums)
        loop.step_in_epoch, loop.partial = b + n, sums
        saves.save(state, loop, step=first + n - 1)
        if signals.received:
          return state, None
  for f, m in pending:
    _tally(sums, loop, f, distributed.to_host(m), trainer, epoch, workdir)
  if signals.received:  # also when the epoch was one block: stop before validating
    _clock_in(clock, loop, sums)
    loop.step_in_epoch, loop.partial = spe, sums
    saves.save(state, loop, step=epoch * spe)
    return state, None
  return state, sums


def epoch_records(trainer: Trainer, loop: LoopState, epoch: int, sums: EpochSums,
                  val_metrics: dict, lrs) -> list[dict]:
  """metrics.jsonl's records of an epoch, one per replica still training."""
  records = []
  for k in range(trainer.num_replicas):
    if loop.active[k]:
      loss, accuracy = sums.means(k)
      records.append(dict(
          epoch=epoch, seed=trainer.seeds[k], loss=loss, accuracy=accuracy,
          val_loss=float(val_metrics["loss"][k]),
          val_accuracy=float(val_metrics["accuracy"][k]), lr=float(lrs[k]),
          time=sums.seconds, skipped_steps=sums.skipped[k]))
  return records


def reduce_lr_on_plateau(trainer: Trainer, state: TrainState, val_metrics: dict):
  """Keras's ReduceLROnPlateau, stepped once per epoch on config.monitor."""
  config = trainer.config
  if not config.reduce_on_plateau.enabled:
    return state
  sign = 1.0 if config.monitor == "val_loss" else -1.0
  return trainer.plateau_update(state, sign * val_metrics[config.monitor[4:]])


def early_stopping(trainer: Trainer, loop: LoopState, records: list[dict]) -> np.ndarray:
  """Keras's EarlyStopping (and the best epoch) per replica; returns which improved."""
  config, r = trainer.config, trainer.num_replicas
  monitor, es = config.monitor, config.early_stopping
  improved = np.zeros(r, bool)
  for record in records:
    k = trainer.seeds.index(record["seed"])
    loop.epochs_run[k] = record["epoch"]
    improved[k], stop = track_best(loop, k, record["epoch"], record[monitor], monitor, es)
    if stop:
      loop.active[k] = False
      if distributed.is_main_process():
        print(f"Early stopping{' seed %d' % record['seed'] if r > 1 else ''}: no "
              f"{monitor} improvement of {es.min_delta} for {es.patience} "
              f"epochs; best epoch {loop.best_epoch[k]}.")
  return improved


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


def print_epoch(config, records: list[dict]) -> None:
  """Keras's epoch lines, one per replica (main process only)."""
  if distributed.is_main_process():
    for record, line in zip(records, reporting.epoch_lines(records, config.num_epochs)):
      skipped = record["skipped_steps"]
      print(line + (f" - skipped: {skipped}" if skipped else ""), flush=True)


def log_epoch(config, workdir: str, loop: LoopState, records: list[dict], tb) -> None:
  """metrics.jsonl and TensorBoard (main process only)."""
  if not distributed.is_main_process():
    return
  reporting.write_history(workdir, loop.history)
  for record in records:
    tb.write(record, prefix=f"seed{record['seed']}/" if config.num_seeds > 1 else "")


def train_and_evaluate(config, workdir: str, fresh: bool = False) -> dict:
  """Trains (resuming from the workdir's latest checkpoint), then tests the best state;
  holds the workdir's lock throughout, so a second run on it is refused.

  Every check that can run before training does, before anything is written or moved:
  the data (train, val and test splits there, whole and big enough for the batch), the
  state's and an evaluation batch's memory, so a
  workdir holds config.json only once a run really started, and the corrected command
  is not refused as a run of a different config; --fresh moves the old run aside only
  then."""
  t_start = time.time()
  if not fresh:
    workdir_lib.check_config(config, workdir)  # refused at once, not after reading data
  train, val = data.load_train_val(config)
  steps_per_epoch = _steps_per_epoch(config, len(train))
  check_state_fits(config, steps_per_epoch)
  trainer = Trainer(config, steps_per_epoch)
  initial = trainer.init_state()
  check_eval_batch(trainer, initial, val)
  if fresh and (aside := workdir_lib.set_aside(workdir)):
    print(f"Moved the previous run to {aside}.")
  workdir_lib.create(workdir)
  with workdir_lib.lock(workdir):
    workdir_lib.record_config(config, workdir)
    return _train_and_evaluate(trainer, workdir, train, val, initial, t_start)


def _train_and_evaluate(trainer: Trainer, workdir: str, train: data.Split, val: data.Split,
                        initial: TrainState, t_start: float) -> dict:
  config = trainer.config
  totals = _print_summary(trainer, workdir)
  saves = Saves(workdir, trainer)
  restored = saves.restore()
  if restored is None:
    state, loop = initial, LoopState.fresh(trainer.num_replicas)
  else:
    state, loop = restored
    print(f"Resuming from {workdir}: epoch {loop.epoch}, step {_step_of(state)}.")
  train_data = TrainData(trainer, train)
  _say_where(train_data, config)
  tb = (reporting.TensorBoard(workdir, config, loop.epoch) if distributed.is_main_process()
        else None)
  try:
    with _Signals() as signals:
      while loop.epoch < config.num_epochs and any(loop.active):
        epoch, clock = loop.epoch + 1, [time.time()]
        state, sums = train_epoch(trainer, state, loop, train_data, epoch, signals, saves,
                                  clock, workdir)
        if sums is None:
          return _interrupted(signals.received, state, saves, workdir)
        val_metrics, _ = trainer.evaluate(state, val)
        lrs = trainer.learning_rates(state)
        state = reduce_lr_on_plateau(trainer, state, val_metrics)
        _clock_in(clock, loop, sums)
        records = epoch_records(trainer, loop, epoch, sums, val_metrics, lrs)
        loop.history.extend(records)
        loop.epoch, loop.step_in_epoch, loop.partial = epoch, 0, None
        improved = early_stopping(trainer, loop, records)
        print_epoch(config, records)
        check_skipped(records, trainer.steps_per_epoch, workdir, trainer.num_replicas > 1)
        saves.new_best(state, improved)
        if (epoch % config.checkpoint_every_epochs == 0 or epoch == config.num_epochs
            or not any(loop.active)):
          saves.save(state, loop)
        log_epoch(config, workdir, loop, records, tb)
      if signals.received:  # during the last validation: saved above; test on rerun
        return _interrupted(signals.received, state, saves, workdir)
    results = final_test(trainer, state, loop, saves, workdir)
    results.update(params=totals, wall_seconds=time.time() - t_start)
    _write_results(trainer, loop, results, workdir, tb)
  finally:
    if tb:
      tb.close()
  saves.ckpts.close()
  return results


def _memory_bytes() -> int | None:
  """The memory of the device the state lives on: a GPU's limit, else this host's RAM."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError):
    return None


def check_state_fits(config, steps_per_epoch: int) -> None:
  """num_seeds replicates the whole training state; far too many would spend minutes
  setting up and compiling, then fail. Refused up front (from one seed's state, before
  any replica is built) when the state alone, with its gradients and the step's
  temporaries (taken as 4x), is beyond the device's memory."""
  one = config.copy_and_resolve_references()
  one.num_seeds = 1
  per_seed = sum(x.size * x.dtype.itemsize
                 for x in jax.tree.leaves(Trainer(one, steps_per_epoch).abstract_state()))
  nbytes, memory = per_seed * config.num_seeds, _memory_bytes()
  if memory and 4 * nbytes > memory:
    raise UserError(
        f"num_seeds={config.num_seeds} replicates the training state "
        f"({per_seed / 2**20:,.2f} MiB a seed) to {nbytes / 2**30:,.1f} GiB, beyond what "
        f"the {memory / 2**30:,.0f} GiB here can train with its gradients; lower "
        "--config.num_seeds (or run the seeds in several programs: --config.seed=K "
        "--config.num_seeds=M).")
  if config.num_seeds >= 16 and distributed.is_main_process():
    print(f"Compiling one program for {config.num_seeds} seeds side by side: "
          "compilation takes longer with more seeds.", flush=True)


def check_eval_batch(trainer: Trainer, state, val: data.Split) -> None:
  """Evaluates one batch before training: an eval_batch_size beyond memory fails here,
  in one line, and not after the first epoch. (Nothing changes: evaluation has no
  randomness and leaves the state alone; its compiled program is reused.)"""
  bs = trainer.config.eval_batch_size
  try:
    trainer.evaluate(state, data.Split(val.images[:bs], val.labels[:bs]))
  except (MemoryError, jax.errors.JaxRuntimeError) as e:
    if not isinstance(e, MemoryError) and "RESOURCE_EXHAUSTED" not in str(e):
      raise
    raise UserError(f"evaluating one batch of eval_batch_size={bs} ran out of memory "
                    f"({type(e).__name__}); lower --config.eval_batch_size: it changes no "
                    "figure (evaluation batches are padded and masked).") from None


def _steps_per_epoch(config, n: int) -> int:
  if config.batch_size % jax.device_count():
    raise UserError(f"batch_size={config.batch_size} must be a multiple of the "
                    f"{jax.device_count()} devices it is split over.")
  return n // config.batch_size


def _print_summary(trainer: Trainer, workdir: str) -> dict:
  """Keras's model.summary() on stdout and in summary.txt; returns the parameter counts."""
  summary, totals = models.summary(trainer.model, trainer.input_shape,
                                   trainer.config.model.name)
  if distributed.is_main_process():
    print(summary)
    with open(os.path.join(workdir, "summary.txt"), "w") as f:
      f.write(summary + "\n")
  return totals


def _say_where(train_data: TrainData, config) -> None:
  if train_data.on_host and distributed.is_main_process():
    print(f"Training images stay in host memory ({train_data.images.nbytes / 2**20:,.0f} "
          f"MiB, dataset.placement={config.dataset.placement}); each block of steps is "
          "copied to the device while the one before it trains.")


def _interrupted(signal_name: str, state, saves: Saves, workdir: str) -> dict:
  saves.ckpts.close()
  print(f"Received {signal_name}: saved a checkpoint at step {_step_of(state)} in "
        f"{workdir}. Rerun the same command to resume.", file=sys.stderr)
  return dict(interrupted=signal_name, step=_step_of(state))


def final_test(trainer: Trainer, state, loop: LoopState, saves: Saves, workdir: str) -> dict:
  """Test figures of the best state per seed (and of the last one where it differs)."""
  config, r = trainer.config, trainer.num_replicas
  results = evaluate_checkpoint(config, workdir, trainer=trainer, ckpts=saves.ckpts,
                                quiet=True)
  per_seed = results["per_seed"]
  last_test = None
  if any(b != e for b, e in zip(loop.best_epoch, loop.epochs_run)):
    last_test, _ = trainer.evaluate(state, data.load_test(config))
  for k, res in enumerate(per_seed):
    mine = [h for h in loop.history if h["seed"] == trainer.seeds[k]]
    final = mine[-1] if mine else {}
    best = next((h for h in mine if h["epoch"] == loop.best_epoch[k]), {})
    res.update(
        seed=trainer.seeds[k], epochs_run=loop.epochs_run[k],
        best_epoch=loop.best_epoch[k],
        stopped_early=not loop.active[k], train_loss=final.get("loss"),
        train_accuracy=final.get("accuracy"), val_loss=best.get("val_loss"),
        val_accuracy=best.get("val_accuracy"),
        test_accuracy_last_epoch=(float(last_test["accuracy"][k]) if last_test
                                  else res["test_accuracy"]))
  results.update(reporting.combine_seeds(per_seed))  # the aggregate, now with val figures
  results.update(model=config.model.name, dataset=config.dataset.name, num_seeds=r,
                 devices=jax.device_count(), processes=jax.process_count(),
                 device_kind=jax.devices()[0].device_kind,
                 train_seconds=loop.train_seconds,
                 steps_per_second=_step_of(state) / max(loop.train_seconds, 1e-9),
                 provenance=provenance.record())
  return results


def _write_results(trainer: Trainer, loop: LoopState, results: dict, workdir: str,
                   tb: reporting.TensorBoard | None) -> None:
  if not distributed.is_main_process():
    return
  if loop.history:
    reporting.plot_history(loop.history, os.path.join(workdir, "history.png"))
  reporting.write_json(os.path.join(workdir, "results.json"), results)
  tb.finish(trainer.config, results, loop.history, trainer.info.class_names)
  print(f"Test (best epoch{'s' if trainer.num_replicas > 1 else ''} "
        f"{', '.join(map(str, loop.best_epoch))}): {reporting.test_summary(results)}. "
        f"Results in {workdir}/results.json")


def evaluate_checkpoint(config, workdir: str, trainer: Trainer | None = None,
                        ckpts: checkpoints.Checkpoints | None = None,
                        quiet: bool = False) -> dict:
  """Restores the best checkpoint and evaluates it on the test split.

  The end of training calls this very function (with its trainer and checkpoints, quiet),
  so `--mode=eval` on a finished workdir prints the test accuracy recorded in
  results.json, to the last digit. --mode=eval itself only reads: its checkpoints are
  opened read-only, it prints the figures and writes nothing (a run on a read-only
  archive, or one a training is writing meanwhile, is evaluated all the same).
  """
  checkpoints.require_best(workdir)
  if trainer is None:
    workdir_lib.check_config(config, workdir, workdir_lib.EVAL_ADVICE,
                             workdir_lib.EVAL_ONLY_FIELDS)
    trainer = Trainer(config, steps_per_epoch=1)
  from_training = ckpts is not None
  ckpts = ckpts or checkpoints.Checkpoints(workdir, read_only=True)
  state, loop, evaluated = _restore_for_eval(trainer, ckpts, config, workdir)
  test = data.load_test(config)
  metrics, preds = trainer.evaluate(state, test)
  per_seed = []
  for k in range(trainer.num_replicas):
    cm = reporting.confusion_matrix(test.labels, preds[k], trainer.info.num_classes)
    per_seed.append(dict(
        seed=trainer.seeds[k], test_loss=float(metrics["loss"][k]),
        test_accuracy=float(metrics["accuracy"][k]), test_examples=len(test),
        checkpoint_step=int(distributed.to_host(state.step)[k]),
        per_class=reporting.per_class(cm, trainer.info.class_names),
        confusion_matrix=cm.tolist()))
  total = sum(np.array(p["confusion_matrix"]) for p in per_seed)
  # every seed's figures, and their aggregate: means, stds and the pooled confusion matrix
  results = dict(reporting.combine_seeds(per_seed), test_examples=len(test),
                 confusion_matrix=total.tolist(),
                 per_class=reporting.per_class(total, trainer.info.class_names))
  if evaluated:
    results["evaluated"] = evaluated
  if not quiet:
    print(f"Test (best checkpoint, epoch{'s' if len(per_seed) > 1 else ''} "
          f"{', '.join(map(str, loop.best_epoch))}): {reporting.test_summary(results)}")
  if from_training and distributed.is_main_process():
    reporting.plot_confusion(total, trainer.info.class_names,
                             os.path.join(workdir, "confusion_matrix.png"))
  return results


def _restore_for_eval(trainer: Trainer, ckpts: checkpoints.Checkpoints, config,
                      workdir: str):
  """(state, loop, evaluated) of the best checkpoint, else of the latest (evaluated then
  says why, unless the latest holds the same best state)."""
  check = identity_check(config, reading=ckpts.read_only)
  restored, evaluated = ckpts.restore_best(trainer.abstract_state(), check), None
  if restored is None:  # the best lost: the latest, which may hold the same state
    restored = ckpts.restore_latest(trainer.abstract_state(), check)
    if restored is None:
      raise UserError(f"every checkpoint in {workdir} is unreadable; train it again "
                      "with --fresh (the old run is set aside, not deleted).")
    latest = LoopState.from_meta(restored[1])
    if holds_best(latest):
      print(f"note: the best checkpoint in {workdir} is missing or unreadable; the latest "
            "one holds the same best state, evaluating it.", file=sys.stderr)
    else:
      evaluated = (f"latest checkpoint (epoch {latest.epoch}, step "
                   f"{int(np.max(restored[0].step))}): the best (epoch "
                   f"{', '.join(map(str, latest.best_epoch))}) is missing or unreadable")
      print(f"warning: evaluating the {evaluated}. results.json records it as "
            "'evaluated'.", file=sys.stderr)
  return trainer.replicate(restored[0]), LoopState.from_meta(restored[1]), evaluated
