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

import collections
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

from digitjax import augment, checkpoints, data, distributed, models
from digitjax import optim
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
    # losses join the objective with weight model.aux_weight, and are absent in eval.
    aux = sum(per_example(a) for a in jax.tree.leaves(mutated.get("aux", {})))
    penalty = sum(jnp.sum(v) for v in jax.tree.leaves(mutated.get("losses", {})))
    loss = data_loss + config.model.aux_weight * aux + penalty
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


class Trainer:
  """The model, optimizer and jitted steps for one config, over its seed replicas.

  Replica k trains with seed config.seed + k; every array has a leading replica axis.
  """

  def __init__(self, config, steps_per_epoch: int):
    self.config = config
    self.info = data.DATASETS[config.dataset.name]
    self.input_shape = data.image_shape(config)
    self.num_replicas = config.num_seeds
    self.seeds = [config.seed + k for k in range(config.num_seeds)]
    self.mesh = distributed.data_mesh()
    self.model = models.build(config, self.info.num_classes)
    self.tx = optim.make(config, steps_per_epoch)
    self.plateau_tx = optim.plateau(config)
    self.schedule = optim.schedule(config, steps_per_epoch)
    keys = jnp.stack([seed_keys(s) for s in self.seeds])
    self.init_keys, self.data_keys, self.step_keys = keys[:, 0], keys[:, 1], keys[:, 2]
    r = self.num_replicas
    step = functools.partial(train_step, model=self.model, tx=self.tx, config=config)
    split = self.mesh.size > 1
    batch = distributed.batch_sharded(self.mesh)

    def step_on_indices(state, all_images, all_labels, idx, key, active):
      images, labels = all_images[idx], all_labels[idx]
      if split:  # data parallel: XLA partitions the step along the batch
        images = jax.lax.with_sharding_constraint(images, batch)
        labels = jax.lax.with_sharding_constraint(labels, batch)
      new, metrics = step(state, images, labels, key)
      return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state), metrics

    mapped = over_replicas(step_on_indices, r, (0, None, None, 0, 0, 0))

    def train_on_order(state, all_images, all_labels, order, b, keys, active):
      return mapped(state, all_images, all_labels, order[:, b], keys, active)

    self.train_on_order = jax.jit(train_on_order, donate_argnums=0)

    def train_block(state, all_images, all_labels, order, b0, keys, active, n):
      """Steps b0 .. b0+n-1 of the epoch in one program (lax.scan): one dispatch instead
      of n, for accelerators whose host cannot launch small steps fast enough."""
      def body(state, i):
        return train_on_order(state, all_images, all_labels, order, b0 + i, keys, active)
      return jax.lax.scan(body, state, jnp.arange(n, dtype=jnp.int32))

    self.train_block = jax.jit(train_block, static_argnames="n", donate_argnums=0)
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

  def epoch_order(self, epoch: int, n: int, batch_size: int):
    """Per replica, an epoch's batch indices (R, steps, batch), on the device."""
    return self.replicate(self.epoch_order_host(epoch, n, batch_size))

  def epoch_order_host(self, epoch: int, n: int, batch_size: int) -> np.ndarray:
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

  def host_batches(self, images: np.ndarray, labels: np.ndarray, order: np.ndarray,
                   start: int, ahead: int = 2):
    """For data kept in host memory: yields (images, labels, order, b) for step() from
    batch `start` on, each batch gathered on the host and sent to the device `ahead`
    steps before its step runs (device_put is asynchronous).

    A step gets its R replicas' batches side by side and the order arange(R*B) split by
    replica, so it runs the very gather of the device-resident path, on fewer images.
    """
    r, steps, bs = order.shape
    local = self.replicate(np.arange(r * bs, dtype=np.int32).reshape(r, 1, bs))
    queue = collections.deque()

    def put(b):
      idx = order[:, b].reshape(-1)
      queue.append(self.replicate((images[idx], labels[idx])))

    for b in range(start, min(start + ahead, steps)):
      put(b)
    for b in range(start, steps):
      if b + ahead < steps:
        put(b + ahead)
      batch_images, batch_labels = queue.popleft()
      yield batch_images, batch_labels, local, 0

  def step(self, state, images, labels, order, b: int, active):
    return self.train_on_order(state, images, labels, order, np.int32(b), self.step_keys,
                               active)

  def steps(self, state, images, labels, order, b: int, n: int, active):
    """n steps from batch b of the epoch; metrics get a leading axis of n."""
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
    bs = self.config.eval_batch_size
    sums = dict(loss=0.0, correct=0.0, count=0.0)
    preds = []
    for start in range(0, len(split), bs):
      images = split.images[start:start + bs]
      labels = split.labels[start:start + bs]
      n = len(labels)
      mask = np.zeros(bs, np.float32)
      mask[:n] = 1
      if n < bs:
        images = np.concatenate([images, np.zeros((bs - n, *images.shape[1:]), np.uint8)])
        labels = np.concatenate([labels, np.zeros(bs - n, np.int32)])
      out, p = self._eval(state.params, state.batch_stats,
                          *self.replicate((images, labels, mask)))
      out, p = distributed.to_host((out, p))
      for k in sums:
        sums[k] = sums[k] + out[k].astype(np.float64)
      preds.append(p[:, :n])
    metrics = dict(loss=sums["loss"] / sums["count"], accuracy=sums["correct"] / sums["count"])
    return metrics, np.concatenate(preds, axis=1)


def _improved(value, best, monitor: str, min_delta: float = 0.0) -> bool:
  if best is None:
    return True
  return value < best - min_delta if monitor == "val_loss" else value > best + min_delta


def track_best(meta: dict, k: int, epoch: int, value: float, monitor: str,
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
  if _improved(value, meta["best"][k], monitor, min_delta):
    meta["best"][k], meta["best_epoch"][k], meta["wait"][k] = value, epoch, 0
    return True, False
  if not es.enabled:
    return False, False
  meta["wait"][k] += 1
  return False, meta["wait"][k] >= es.patience


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
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
      if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
        continue  # nohup
      try:
        self._old[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread (e.g. inside some test runners)
        pass
    return self

  def _handle(self, signum, frame):
    if self.received is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C means now
    self.received = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


def _step_of(state) -> int:
  return int(distributed.to_host(state.step)[0])


def _new_meta(num_replicas: int) -> dict:
  """The host-side loop state that checkpoints carry besides the TrainState."""
  r = num_replicas
  return dict(epoch=0, step_in_epoch=0, partial=None, history=[], train_seconds=0.0,
              best=[None] * r, best_epoch=[0] * r, wait=[0] * r,
              active=[True] * r, epochs_run=[0] * r)


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (resuming from the workdir's latest checkpoint), then tests the best state;
  holds the workdir's lock throughout, so a second run on it is refused."""
  workdir_lib.create(workdir)
  with workdir_lib.lock(workdir):
    workdir_lib.record_config(config, workdir)
    return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config, workdir: str) -> dict:
  t_start = time.time()
  main = distributed.is_main_process()
  train, val = data.load_train_val(config)
  if config.batch_size % jax.device_count():
    raise UserError(f"batch_size={config.batch_size} must be a multiple of the "
                    f"{jax.device_count()} devices it is split over.")
  steps_per_epoch = len(train) // config.batch_size
  trainer = Trainer(config, steps_per_epoch)
  r = trainer.num_replicas
  summary, totals = models.summary(trainer.model, trainer.input_shape, config.model.name)
  if main:
    print(summary)
    with open(os.path.join(workdir, "summary.txt"), "w") as f:
      f.write(summary + "\n")

  ckpts = checkpoints.Checkpoints(workdir)
  abstract = trainer.abstract_state()
  restored = ckpts.restore_latest(abstract)
  if restored is None:
    state, meta = trainer.init_state(), _new_meta(r)
    best_state = None
  else:
    state, meta = restored
    state = trainer.replicate(state)
    best = ckpts.restore_best(abstract)
    best_state = trainer.replicate(best[0]) if best else None
    print(f"Resuming from {workdir}: epoch {meta['epoch']}, step {_step_of(state)}.")

  on_host = data_placement(config, train.images.nbytes) == "host"
  if on_host:  # the split stays in host memory; batches are copied over as they go
    images, labels = train.images, train.labels
    if main:
      print(f"Training images stay in host memory ({train.images.nbytes / 2**20:,.0f} MiB, "
            f"dataset.placement={config.dataset.placement}); batches are copied to the "
            "device two steps ahead.")
  else:
    images, labels = trainer.replicate((train.images, train.labels))
  tb = reporting.TensorBoard(workdir) if main else None
  monitor, sign = config.monitor, (1.0 if config.monitor == "val_loss" else -1.0)
  interrupted = None
  best_unsaved = False

  def save(step_no):
    """Latest checkpoint, after the best one if that changed since the last save: the two
    on disk always agree, so a run resumed from `latest` also has its best state."""
    nonlocal best_unsaved
    if best_unsaved:
      ckpts.save_best(step_no, best_state, meta)
      best_unsaved = False
    ckpts.save_latest(step_no, state, meta)

  try:
    with _Signals() as signals:
      while meta["epoch"] < config.num_epochs and any(meta["active"]):
        epoch = meta["epoch"] + 1
        t0 = time.time()
        order = trainer.epoch_order_host(epoch, len(train), config.batch_size)
        batches = (trainer.host_batches(images, labels, order, meta["step_in_epoch"])
                   if on_host else None)
        if not on_host:
          order = trainer.replicate(order)
        active = trainer.replicate(np.array(meta["active"]))
        sums = meta["partial"] or dict(loss=[0.0] * r, accuracy=[0.0] * r, steps=[0] * r,
                                       skipped=[0] * r)
        # the epoch's time: what it took before a resume (its partial's), plus since t0;
        # t0 itself restarts at every mid-epoch save, for train_seconds
        t_epoch, seconds_before = t0, sums.get("seconds", 0.0)
        pending = []

        def drain():
          """Pulls pending step metrics to the host; the only sync inside an epoch."""
          for first, metrics, n in pending:  # n: steps in one dispatch (leading axis)
            metrics = distributed.to_host(metrics)
            if not n:
              tally(first, metrics)
            for j in range(n):
              tally(first + j, jax.tree.map(lambda x: x[j], metrics))
          pending.clear()

        def tally(i, m):
          """Adds step i's metrics (per replica) to the epoch's sums; stops on NaN."""
          for k in range(r):
            if not meta["active"][k]:
              continue
            if not m["finite"][k]:
              if config.on_nonfinite == "stop":
                seed = f" of seed {trainer.seeds[k]}" if r > 1 else ""
                raise NonFiniteLoss(
                    f"non-finite loss or gradient at step {i} (epoch {epoch}, batch "
                    f"{i - (epoch - 1) * steps_per_epoch}){seed}; training stopped and "
                    f"the last good checkpoint in {workdir} is kept. Lower the learning "
                    "rate, or set --config.on_nonfinite=skip to skip such steps.")
              sums["skipped"][k] += 1
              continue
            sums["loss"][k] += float(m["loss"][k])
            sums["accuracy"][k] += float(m["accuracy"][k])
            sums["steps"][k] += 1

        every = config.checkpoint_every_steps
        blocks = config.steps_per_dispatch > 1 and not on_host
        b, pending_steps = meta["step_in_epoch"], 0
        while b < steps_per_epoch:
          first = (epoch - 1) * steps_per_epoch + b + 1
          if blocks:  # n steps in one jitted scan; a block ends at a checkpoint step
            n = min(config.steps_per_dispatch, steps_per_epoch - b)
            if every:
              n = min(n, every - (first - 1) % every)
            state, m = trainer.steps(state, images, labels, order, b, n, active)
            pending.append((first, m, n))
          else:
            step_data = next(batches) if on_host else (images, labels, order, b)
            state, m = trainer.step(state, *step_data, active)
            pending.append((first, m, 0))
            n = 1
          b += n
          pending_steps += n
          step_no = first + n - 1
          at_checkpoint = bool(every and step_no % every == 0)
          if pending_steps >= config.log_every_steps or signals.received or at_checkpoint:
            drain()
            pending_steps = 0
          if (signals.received or at_checkpoint) and b < steps_per_epoch:
            sums["seconds"] = seconds_before + time.time() - t_epoch
            meta.update(step_in_epoch=b, partial=sums,
                        train_seconds=meta["train_seconds"] + time.time() - t0)
            t0 = time.time()
            save(step_no)
            if signals.received:
              interrupted = signals.received
              break
        if interrupted:
          break
        drain()

        val_metrics, _ = trainer.evaluate(state, val)
        lrs = trainer.learning_rates(state)
        if config.reduce_on_plateau.enabled:
          state = trainer.plateau_update(state, sign * val_metrics[monitor[4:]])
        seconds = time.time() - t0
        epoch_seconds = seconds_before + time.time() - t_epoch
        records = []
        for k in range(r):
          if not meta["active"][k]:
            continue
          records.append(dict(
              epoch=epoch, seed=trainer.seeds[k],
              loss=sums["loss"][k] / max(sums["steps"][k], 1),
              accuracy=sums["accuracy"][k] / max(sums["steps"][k], 1),
              val_loss=float(val_metrics["loss"][k]),
              val_accuracy=float(val_metrics["accuracy"][k]), lr=float(lrs[k]),
              time=epoch_seconds, skipped_steps=sums["skipped"][k]))
        meta["history"].extend(records)
        meta.update(epoch=epoch, step_in_epoch=0, partial=None,
                    train_seconds=meta["train_seconds"] + seconds)
        improved = np.zeros(r, bool)
        es = config.early_stopping
        for record in records:
          k = trainer.seeds.index(record["seed"])
          meta["epochs_run"][k] = epoch
          improved[k], stop = track_best(meta, k, epoch, record[monitor], monitor, es)
          if stop:
            meta["active"][k] = False
            if main:
              print(f"Early stopping{' seed %d' % record['seed'] if r > 1 else ''}: no "
                    f"{monitor} improvement of {es.min_delta} for {es.patience} "
                    f"epochs; best epoch {meta['best_epoch'][k]}.")
        if main:
          for record, line in zip(records, reporting.epoch_lines(records, config.num_epochs)):
            skipped = record["skipped_steps"]
            print(line + (f" - skipped: {skipped}" if skipped else ""), flush=True)
        for record in records:  # on_nonfinite=skip: most steps skipped is no longer learning
          if 2 * record["skipped_steps"] > steps_per_epoch:
            seed = f"seed {record['seed']} " if r > 1 else ""
            raise NonFiniteLoss(
                f"{seed}skipped {record['skipped_steps']} of the {steps_per_epoch} steps of "
                f"epoch {epoch} for a non-finite loss or gradient (on_nonfinite=skip): more "
                "than half, so training stopped rather than finish on parameters that no "
                f"longer learn. The checkpoints saved in {workdir} before it are kept. "
                "Lower the learning rate.")
        if improved.any():
          best_state = _select(jnp.asarray(improved), state,
                               state if best_state is None else best_state)
          best_unsaved = True
        if (epoch % config.checkpoint_every_epochs == 0 or epoch == config.num_epochs
            or not any(meta["active"])):
          save(_step_of(state))
        if main:
          reporting.write_history(workdir, meta["history"])
          for record in records:
            tb.write(record, prefix=f"seed{record['seed']}/" if r > 1 else "")
  finally:
    if tb:
      tb.close()
  if interrupted:
    ckpts.close()
    print(f"Received {interrupted}: saved a checkpoint at step {_step_of(state)} in "
          f"{workdir}. Rerun the same command to resume.", file=sys.stderr)
    return dict(interrupted=interrupted, step=_step_of(state))

  results = evaluate_checkpoint(config, workdir, trainer=trainer, ckpts=ckpts, quiet=True)
  per_seed = results["per_seed"] if r > 1 else [results]
  last_test = None
  if any(b != e for b, e in zip(meta["best_epoch"], meta["epochs_run"])):
    last_test, _ = trainer.evaluate(state, data.load_test(config))
  for k, res in enumerate(per_seed):
    mine = [h for h in meta["history"] if h["seed"] == trainer.seeds[k]]
    final = mine[-1] if mine else {}
    best = next((h for h in mine if h["epoch"] == meta["best_epoch"][k]), {})
    res.update(
        seed=trainer.seeds[k], epochs_run=meta["epochs_run"][k],
        best_epoch=meta["best_epoch"][k],
        stopped_early=not meta["active"][k], train_loss=final.get("loss"),
        train_accuracy=final.get("accuracy"), val_loss=best.get("val_loss"),
        val_accuracy=best.get("val_accuracy"),
        test_accuracy_last_epoch=(float(last_test["accuracy"][k]) if last_test
                                  else res["test_accuracy"]))
  results = reporting.combine_seeds(per_seed) if r > 1 else per_seed[0]
  steps = int(distributed.to_host(state.step)[0])
  results.update(model=config.model.name, dataset=config.dataset.name, params=totals,
                 num_seeds=r, devices=jax.device_count(), processes=jax.process_count(),
                 device_kind=jax.devices()[0].device_kind,
                 train_seconds=meta["train_seconds"], wall_seconds=time.time() - t_start,
                 steps_per_second=steps / max(meta["train_seconds"], 1e-9))
  if main:
    if meta["history"]:
      reporting.plot_history(meta["history"], os.path.join(workdir, "history.png"))
    reporting.write_json(os.path.join(workdir, "results.json"), results)
    print(f"Test (best epoch{'s' if r > 1 else ''} "
          f"{', '.join(map(str, meta['best_epoch']))}): {reporting.test_summary(results)}. "
          f"Results in {workdir}/results.json")
  ckpts.close()
  return results


def evaluate_checkpoint(config, workdir: str, trainer: Trainer | None = None,
                        ckpts: checkpoints.Checkpoints | None = None,
                        quiet: bool = False) -> dict:
  """Restores the best checkpoint and evaluates it on the test split.

  The end of training calls this very function, so `--mode=eval` on a finished workdir
  prints the test accuracy recorded in results.json, to the last digit.
  """
  checkpoints.require_best(workdir)
  if trainer is None:
    workdir_lib.check_config(config, workdir)
    trainer = Trainer(config, steps_per_epoch=1)
  ckpts = ckpts or checkpoints.Checkpoints(workdir)
  restored = ckpts.restore_best(trainer.abstract_state())
  if restored is None:
    raise UserError(f"every best checkpoint in {workdir} is unreadable; retrain.")
  state, meta = restored
  state = trainer.replicate(state)
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
  if distributed.is_main_process():
    total = sum(np.array(p["confusion_matrix"]) for p in per_seed)
    reporting.plot_confusion(total, trainer.info.class_names,
                             os.path.join(workdir, "confusion_matrix.png"))
  results = reporting.combine_seeds(per_seed) if len(per_seed) > 1 else per_seed[0]
  if not quiet:
    print(f"Test (best checkpoint, epoch{'s' if len(per_seed) > 1 else ''} "
          f"{', '.join(map(str, meta['best_epoch']))}): {reporting.test_summary(results)}")
  return results
