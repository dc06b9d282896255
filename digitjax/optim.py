"""Optimizers and learning-rate schedules: optax, with Keras's defaults.

The reports were trained with Keras, whose defaults differ from optax's (RMSprop and Adam
use epsilon 1e-7; Adadelta rho 0.95; Adagrad starts its accumulator at 0.1). Keras
versions differ too: standalone Keras <= 2.3 added RMSprop's epsilon outside the square
root, tf.keras 2 and Keras 3 inside (`config.optimizer.eps_in_sqrt`). A config that
leaves `optimizer.learning_rate` unset gets Keras's default learning rate for that
optimizer, the number REPORTS.md assumes.

ReduceLROnPlateau is optax.contrib.reduce_on_plateau, stepped once per epoch by the
training loop with the monitored validation metric (as Keras's callback is), and applied
in the train step as a scale on the updates.
"""
from __future__ import annotations

import optax

KERAS_DEFAULT_LR = {
    "sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "rmsprop": 1e-3, "adam": 1e-3,
    "adadelta": 1e-3,  # tf.keras 2.x / Keras 3; standalone Keras 2.2 used 1.0 (see D1)
    "adagrad": 1e-3,
}

OPTIMIZERS = {
    "sgd": lambda lr, c: optax.sgd(lr, momentum=c.momentum or None),
    "momentum": lambda lr, c: optax.sgd(lr, momentum=c.momentum or 0.9),
    "nesterov": lambda lr, c: optax.sgd(lr, momentum=c.momentum or 0.9, nesterov=True),
    "rmsprop": lambda lr, c: optax.rmsprop(lr, decay=0.9, eps=1e-7, eps_in_sqrt=c.eps_in_sqrt),
    "adam": lambda lr, c: optax.adam(lr, b1=0.9, b2=0.999, eps=1e-7),
    "adadelta": lambda lr, c: optax.adadelta(lr, rho=0.95, eps=1e-7),
    "adagrad": lambda lr, c: optax.adagrad(lr, initial_accumulator_value=0.1, eps=1e-7),
}

SCHEDULES = ("constant", "cosine", "warmup_cosine")
# Schedules that run over the whole run, config.num_epochs * steps_per_epoch steps: another
# num_epochs is another schedule, so a workdir refuses to resume under it
# (workdir.check_schedule) rather than jump to a point of a new curve.
RUN_LENGTH_SCHEDULES = ("cosine", "warmup_cosine")


def learning_rate(config) -> float:
  lr = config.optimizer.learning_rate
  return KERAS_DEFAULT_LR[config.optimizer.name] if lr is None else lr


def schedule(config, steps_per_epoch: int) -> optax.Schedule:
  """Learning rate as a function of the step: constant, cosine, or warmup then cosine."""
  lr = learning_rate(config)
  total = max(config.num_epochs * steps_per_epoch, 1)
  name = config.optimizer.schedule
  if name == "constant":
    return optax.constant_schedule(lr)
  if name == "cosine":
    return optax.cosine_decay_schedule(lr, total)
  warmup = int(config.optimizer.warmup_epochs * steps_per_epoch)
  return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total, warmup + 1))


def make(config, steps_per_epoch: int) -> optax.GradientTransformation:
  return OPTIMIZERS[config.optimizer.name](schedule(config, steps_per_epoch), config.optimizer)


def plateau(config) -> optax.GradientTransformationExtraArgs:
  """Keras ReduceLROnPlateau(factor, patience, min_delta absolute, min_lr).

  Keras lowers the rate to max(lr * factor, min_lr), and only while lr > min_lr: it never
  raises it. optax's scale is max(scale * factor, min_scale) at every update, which a
  min_lr above the learning rate (min_scale > 1) would raise; capping min_scale at 1
  keeps Keras's rule (and changes nothing for min_lr <= learning rate).
  """
  rop = config.reduce_on_plateau
  return optax.contrib.reduce_on_plateau(
      factor=rop.factor, patience=rop.patience, rtol=0.0, atol=rop.min_delta,
      min_scale=min(rop.min_lr / learning_rate(config), 1.0))
