"""Training and evaluation, top to bottom: state, loss, steps, epoch loop, final test.

The steps are pure functions of (state, batch, key). They never touch the host, so the
same code can be jitted, vmapped over seeds, or run over devices: pass `axis_name` and
gradients, metrics and BatchNorm statistics are averaged over that named axis.

Everything random derives from config.seed: parameters from one key, the data order of
epoch e from fold_in(data key, e), dropout and augmentation of step s from
fold_in(step key, s). A run resumed from a checkpoint therefore continues with exactly
the numbers an uninterrupted run would have produced.

The loop (`train_and_evaluate`) owns every side effect: checkpoints, logs, plots,
early stopping and ReduceLROnPlateau, signals.
"""
from __future__ import annotations

import functools
import json
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

from digitjax import augment, checkpoints, config as config_lib, data, models, optim
from digitjax import reporting
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


def compute_loss(logits, labels, loss: str, output_activation: str):
  """Per-example loss.

  With a softmax output this is the usual softmax cross-entropy. With a sigmoid output
  (report A's perceptron) it is what Keras's categorical_crossentropy does to sigmoid
  outputs: normalise them to sum to one, then take -log of the true class.
  """
  if output_activation == "softmax":
    log_probs = jax.nn.log_softmax(logits)
    probs = jnp.exp(log_probs)
  else:
    probs = jax.nn.sigmoid(logits)
    log_probs = jax.nn.log_sigmoid(logits) - jnp.log(probs.sum(-1, keepdims=True))
  onehot = jax.nn.one_hot(labels, logits.shape[-1])
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
                                           config.model.output_activation).mean()
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
  loss = compute_loss(logits, labels, config.loss, config.model.output_activation)
  preds = logits.argmax(-1)
  return dict(loss=(loss * mask).sum(), correct=((preds == labels) * mask).sum(),
              count=mask.sum()), preds


class Trainer:
  """Builds the model, optimizer and jitted steps for one config."""

  def __init__(self, config, steps_per_epoch: int):
    self.config = config
    self.info = data.DATASETS[config.dataset.name]
    self.input_shape = data.image_shape(config)
    self.model = models.build(config, self.info.num_classes)
    self.tx = optim.make(config, steps_per_epoch)
    self.plateau_tx = optim.plateau(config)
    self.schedule = optim.schedule(config, steps_per_epoch)
    self.init_key, self.data_key, self.step_key = seed_keys(config.seed)
    step = functools.partial(train_step, model=self.model, tx=self.tx, config=config)

    def train_on_indices(state, all_images, all_labels, idx, key):
      return step(state, all_images[idx], all_labels[idx], key)

    self.train_on_indices = jax.jit(train_on_indices, donate_argnums=0)
    self.eval_step = jax.jit(functools.partial(eval_step, model=self.model, config=config))

  def init_state(self) -> TrainState:
    return create_train_state(self.model, self.tx, self.plateau_tx, self.input_shape,
                              self.init_key)

  def abstract_state(self):
    return jax.eval_shape(self.init_state)

  def epoch_order(self, epoch: int, n: int, batch_size: int):
    """Batch indices of an epoch, (steps, batch): a seeded shuffle, remainder dropped."""
    perm = jax.random.permutation(jax.random.fold_in(self.data_key, epoch), n)
    steps = n // batch_size
    return perm[: steps * batch_size].reshape(steps, batch_size)

  def evaluate(self, state: TrainState, split: data.Split):
    """Mean loss and accuracy over a split, and every prediction (fixed batch shape)."""
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
      out, p = self.eval_step(state.params, state.batch_stats, images, labels, mask)
      for k, v in jax.device_get(out).items():
        sums[k] += float(v)
      preds.append(np.asarray(p)[:n])
    return (dict(loss=sums["loss"] / sums["count"], accuracy=sums["correct"] / sums["count"]),
            np.concatenate(preds))


def _improved(value, best, monitor: str, min_delta: float = 0.0) -> bool:
  if best is None:
    return True
  return value < best - min_delta if monitor == "val_loss" else value > best + min_delta


class _Signals:
  """SIGTERM / SIGINT set a flag; the loop checkpoints at the next step and exits."""

  def __init__(self):
    self.received = None
    self._old = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
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


def prepare_workdir(config, workdir: str) -> None:
  """Refuses a workdir that holds a run of a different config; records this config."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  mine = config_lib.fingerprint(config)
  if os.path.exists(path):
    with open(path) as f:
      try:
        theirs = config_lib.fingerprint_from_json(f.read())
      except ValueError:
        theirs = None
    if theirs != mine:
      diff = config_lib.describe_difference(theirs, mine)
      raise UserError(
          f"workdir {workdir} holds a run of a different config ({diff}). Use another "
          "--workdir, or --fresh to set the old run aside (it is renamed, not deleted).")
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  os.replace(path + ".tmp", path)


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (resuming from the workdir's latest checkpoint), then tests the best state."""
  t_start = time.time()
  prepare_workdir(config, workdir)
  train, val = data.load_train_val(config)
  steps_per_epoch = len(train) // config.batch_size
  trainer = Trainer(config, steps_per_epoch)
  summary, totals = models.summary(trainer.model, trainer.input_shape, config.model.name)
  print(summary)
  with open(os.path.join(workdir, "summary.txt"), "w") as f:
    f.write(summary + "\n")

  ckpts = checkpoints.Checkpoints(workdir)
  restored = ckpts.restore_latest(trainer.abstract_state())
  if restored is None:
    state = trainer.init_state()
    meta = dict(epoch=0, step_in_epoch=0, partial=None, history=[], best=None,
                best_epoch=0, wait=0, train_seconds=0.0, stopped_early=False)
  else:
    state, meta = restored
    print(f"Resuming from {workdir}: epoch {meta['epoch']}, step {int(state.step)}.")

  images = jax.device_put(train.images)
  labels = jax.device_put(train.labels)
  tb = reporting.TensorBoard(workdir)
  monitor = config.monitor
  interrupted = None
  try:
    with _Signals() as signals:
      while meta["epoch"] < config.num_epochs and not meta["stopped_early"]:
        epoch = meta["epoch"] + 1
        t0 = time.time()
        order = trainer.epoch_order(epoch, len(train), config.batch_size)
        sums = meta["partial"] or dict(loss=0.0, accuracy=0.0, steps=0, skipped=0)
        pending = []

        def drain():
          """Pulls pending step metrics to the host; the only sync inside an epoch."""
          for i, m in pending:
            m = jax.device_get(m)
            if not m["finite"]:
              if config.on_nonfinite == "stop":
                raise NonFiniteLoss(
                    f"non-finite loss or gradient at step {i} (epoch {epoch}, batch "
                    f"{i - (epoch - 1) * steps_per_epoch}); training stopped and the last "
                    f"good checkpoint in {workdir} is kept. Lower the learning rate, or "
                    "set --config.on_nonfinite=skip to skip such steps.")
              sums["skipped"] += 1
              continue
            sums["loss"] += float(m["loss"])
            sums["accuracy"] += float(m["accuracy"])
            sums["steps"] += 1
          pending.clear()

        for b in range(meta["step_in_epoch"], steps_per_epoch):
          step_no = int((epoch - 1) * steps_per_epoch + b + 1)
          state, m = trainer.train_on_indices(state, images, labels, order[b],
                                              trainer.step_key)
          pending.append((step_no, m))
          every = config.checkpoint_every_steps
          if len(pending) >= config.log_every_steps or signals.received or (
              every and step_no % every == 0):
            drain()
          if (signals.received or (every and step_no % every == 0)) and (
              b + 1 < steps_per_epoch):
            meta.update(step_in_epoch=b + 1, partial=dict(sums),
                        train_seconds=meta["train_seconds"] + time.time() - t0)
            t0 = time.time()
            ckpts.save_latest(step_no, state, meta)
            if signals.received:
              interrupted = signals.received
              break
        if interrupted:
          break
        drain()

        val_metrics, _ = trainer.evaluate(state, val)
        lr = float(trainer.schedule(state.step)) * float(state.plateau.scale)
        record = dict(epoch=epoch, loss=sums["loss"] / max(sums["steps"], 1),
                      accuracy=sums["accuracy"] / max(sums["steps"], 1),
                      val_loss=val_metrics["loss"], val_accuracy=val_metrics["accuracy"],
                      lr=lr, time=time.time() - t0, skipped_steps=sums["skipped"])
        if config.reduce_on_plateau.enabled:
          value = record[monitor] if monitor == "val_loss" else -record[monitor]
          _, plateau = trainer.plateau_tx.update({}, state.plateau, value=value)
          state = state.replace(plateau=plateau)
        print(reporting.epoch_line(record, config.num_epochs), flush=True)
        meta["history"].append(record)
        meta.update(epoch=epoch, step_in_epoch=0, partial=None,
                    train_seconds=meta["train_seconds"] + record["time"])
        if _improved(record[monitor], meta["best"], monitor):
          meta.update(best=record[monitor], best_epoch=epoch)
          ckpts.save_best(int(state.step), state, meta)
        es = config.early_stopping
        if es.enabled:
          if _improved(record[monitor], meta.get("es_best"), monitor, es.min_delta):
            meta.update(es_best=record[monitor], wait=0)
          else:
            meta["wait"] += 1
            if meta["wait"] >= es.patience:
              meta["stopped_early"] = True
              print(f"Early stopping: no {monitor} improvement of {es.min_delta} for "
                    f"{es.patience} epochs; best epoch {meta['best_epoch']}.")
        ckpts.save_latest(int(state.step), state, meta)
        reporting.write_history(workdir, meta["history"])
        tb.write(record)
  finally:
    tb.close()
  if interrupted:
    ckpts.close()
    print(f"Received {interrupted}: saved a checkpoint at step {int(state.step)} in "
          f"{workdir}. Rerun the same command to resume.", file=sys.stderr)
    return dict(interrupted=interrupted, step=int(state.step))

  if meta["history"]:
    reporting.plot_history(meta["history"], os.path.join(workdir, "history.png"))
  last_test = None
  if meta["history"] and meta["best_epoch"] != meta["epoch"]:
    last_test, _ = trainer.evaluate(state, data.load_test(config))
  results = evaluate_checkpoint(config, workdir, trainer=trainer, ckpts=ckpts, quiet=True)
  final = meta["history"][-1] if meta["history"] else {}
  best = next((r for r in meta["history"] if r["epoch"] == meta["best_epoch"]), {})
  results.update(
      model=config.model.name, dataset=config.dataset.name, seed=config.seed,
      params=totals, epochs_run=meta["epoch"], best_epoch=meta["best_epoch"],
      stopped_early=meta["stopped_early"],
      train_loss=final.get("loss"), train_accuracy=final.get("accuracy"),
      val_loss=best.get("val_loss"), val_accuracy=best.get("val_accuracy"),
      test_accuracy_last_epoch=(last_test or {"accuracy": results["test_accuracy"]})[
          "accuracy"],
      train_seconds=meta["train_seconds"], wall_seconds=time.time() - t_start,
      steps_per_second=int(state.step) / max(meta["train_seconds"], 1e-9))
  reporting.write_json(os.path.join(workdir, "results.json"), results)
  ckpts.close()
  print(f"Test (best epoch {meta['best_epoch']}): loss {results['test_loss']:.4f}, "
        f"accuracy {results['test_accuracy']:.4f}. Results in {workdir}/results.json")
  return results


def evaluate_checkpoint(config, workdir: str, trainer: Trainer | None = None,
                        ckpts: checkpoints.Checkpoints | None = None,
                        quiet: bool = False) -> dict:
  """Restores the best checkpoint and evaluates it on the test split.

  The end of training calls this very function, so `--mode=eval` on a finished workdir
  prints the test accuracy recorded in results.json, to the last digit.
  """
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise UserError(f"there is nothing to evaluate in {workdir}: it holds no checkpoint. "
                    "Train first (--mode=train) or point --workdir at a trained run.")
  if trainer is None:
    _check_workdir_config(config, workdir)
    trainer = Trainer(config, steps_per_epoch=1)
  ckpts = ckpts or checkpoints.Checkpoints(workdir)
  checkpoints.require_best(workdir, ckpts)
  restored = ckpts.restore_best(trainer.abstract_state())
  if restored is None:
    raise UserError(f"every best checkpoint in {workdir} is unreadable; retrain.")
  state, meta = restored
  test = data.load_test(config)
  metrics, preds = trainer.evaluate(state, test)
  cm = reporting.confusion_matrix(test.labels, preds, trainer.info.num_classes)
  reporting.plot_confusion(cm, trainer.info.class_names,
                           os.path.join(workdir, "confusion_matrix.png"))
  results = dict(test_loss=metrics["loss"], test_accuracy=metrics["accuracy"],
                 test_examples=len(test), checkpoint_step=int(state.step),
                 per_class=reporting.per_class(cm, trainer.info.class_names),
                 confusion_matrix=cm.tolist())
  if not quiet:
    print(f"Test (checkpoint of epoch {meta['best_epoch']}, step {int(state.step)}): "
          f"loss {metrics['loss']:.4f}, accuracy {metrics['accuracy']:.4f}")
  return results


def _check_workdir_config(config, workdir):
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    with open(path) as f:
      theirs = config_lib.fingerprint_from_json(f.read())
    if theirs != config_lib.fingerprint(config):
      raise UserError(
          f"workdir {workdir} was trained with a different config "
          f"({config_lib.describe_difference(theirs, config_lib.fingerprint(config))}); "
          "evaluate it with the config it was trained with.")
