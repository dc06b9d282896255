"""The pure functions of training: state, loss, the train and eval steps.

The steps are pure functions of (state, batch, key). They never touch the host, so the
same code is jitted, vmapped over seeds (config.num_seeds replicas in one program), and
partitioned over devices (digitjax.distributed); under pmap/shard_map, pass `axis_name`
and gradients and metrics are averaged over that named axis.

Everything random derives from config.seed: parameters from one key, the data order of
epoch e from fold_in(data key, e) (digitjax.trainer), dropout and augmentation of step s
from fold_in(step key, s). A run resumed from a checkpoint therefore continues with
exactly the numbers an uninterrupted run would have produced.
"""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from digitjax import augment, models


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  plateau: Any  # optax.contrib.reduce_on_plateau state; its .scale multiplies updates


def seed_keys(seed: int):
  """(init, data, step) keys: independent streams from one seed."""
  return jax.random.split(jax.random.key(seed), 3)


def create_train_state(model, tx, plateau_tx, input_shape, init_key,
                       init: str = "keras") -> TrainState:
  """The state before step 1; init is config.model.init (models.inits: "keras" keeps
  the layers' own initialisers, "torch" redraws kernels and biases as PyTorch does)."""
  x = jnp.zeros((1, *input_shape), jnp.float32)
  variables = model.init({"params": init_key}, x, train=False)
  params = models.initialize(variables["params"], init_key, init)
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


def probabilities(logits, output_activation: str):
  """Class probabilities as the loss reads the logits: a softmax, or per-class sigmoids
  normalised to sum to one (report A's perceptron under categorical_crossentropy)."""
  if output_activation == "softmax":
    return jax.nn.softmax(logits)
  p = jax.nn.sigmoid(logits)
  return p / p.sum(-1, keepdims=True)


def to_float(images):
  """uint8 [0, 255] -> float32 [0, 1], inside the jit so only uint8 lives on device."""
  return images.astype(jnp.float32) / 255.0


def train_step(state: TrainState, images, labels, key, *, model, tx, config,
               axis_name=None):
  """One optimizer step: (state, batch, key) -> (state, metrics). Pure."""
  key = jax.random.fold_in(key, state.step)
  dropout_key, augment_key = jax.random.split(key)
  aux_weight = getattr(model, "aux_weight", 0.0)  # a model with auxiliary heads: its own
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
    # losses join the objective with the model's aux_weight, and are absent in eval.
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
