"""Optimizers and learning-rate schedules: optax, with Keras's defaults.

The reports were trained with Keras, whose defaults differ from optax's (RMSprop and Adam
use epsilon 1e-7; Adadelta rho 0.95; Adagrad starts its accumulator at 0.1). Keras
versions differ too: standalone Keras <= 2.3 added RMSprop's epsilon outside the square
root, tf.keras 2 and Keras 3 inside (`config.optimizer.eps_in_sqrt`). A config that
leaves `optimizer.learning_rate` unset gets Keras's default learning rate for that
optimizer, the number REPORTS.md assumes.

The optimizer fields use Keras's names and defaults (beta_1, beta_2, epsilon), so a recipe
written for PyTorch (configs/speedrun_mnist.py: Adam(betas=(0.7, 0.9), eps=1e-8) and
OneCycleLR) is a config like any other; schedule "onecycle" is PyTorch's OneCycleLR.

ReduceLROnPlateau is optax.contrib.reduce_on_plateau, stepped once per epoch by the
training loop with the monitored validation metric (as Keras's callback is), and applied
in the train step as a scale on the updates.
"""
from __future__ import annotations

import jax.numpy as jnp
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
    "rmsprop": lambda lr, c: optax.rmsprop(lr, decay=0.9, eps=c.epsilon,
                                           eps_in_sqrt=c.eps_in_sqrt),
    "adam": lambda lr, c: optax.adam(lr, b1=c.beta_1, b2=c.beta_2, eps=c.epsilon),
    "adadelta": lambda lr, c: optax.adadelta(lr, rho=0.95, eps=c.epsilon),
    "adagrad": lambda lr, c: optax.adagrad(lr, initial_accumulator_value=0.1, eps=c.epsilon),
}
# Which optimizers read which of the optimizer group's own fields (config.validate
# refuses a changed field that the chosen optimizer or schedule would ignore).
READERS = {"beta_1": ("adam",), "beta_2": ("adam",),
           "epsilon": ("rmsprop", "adam", "adadelta", "adagrad"),
           "pct_start": ("onecycle",), "div_factor": ("onecycle",),
           "final_div_factor": ("onecycle",)}

SCHEDULES = ("constant", "cosine", "warmup_cosine", "onecycle")
# Schedules that run over the whole run, config.num_epochs * steps_per_epoch steps: another
# num_epochs is another schedule, so a workdir refuses to resume under it
# (workdir.check_schedule) rather than jump to a point of a new curve.
RUN_LENGTH_SCHEDULES = ("cosine", "warmup_cosine", "onecycle")


def learning_rate(config) -> float:
  lr = config.optimizer.learning_rate
  return KERAS_DEFAULT_LR[config.optimizer.name] if lr is None else lr


def onecycle(total: int, peak: float, pct_start: float, div_factor: float,
             final_div_factor: float) -> optax.Schedule:
  """torch.optim.lr_scheduler.OneCycleLR(anneal_strategy='cos', three_phase=False) as an
  optax schedule of the step, bit for bit in its phase boundaries (optax's own one-cycle
  schedules put them one step later): cosine from peak/div up to peak until step
  pct_start*total - 1, then cosine down to peak/div/final_div at step total - 1.

  Where PyTorch has no value this has one: a warm-up ending at step 0 (pct_start*total
  == 1, where PyTorch divides by zero) is step 0 alone, at peak/div; from step total on
  (where PyTorch raises) it stays at the last step's value, the rate the trainer then
  reports for the finished run.
  """
  start = peak / div_factor
  end1, end2 = float(pct_start * total) - 1, float(total - 1)

  def cos(a, b, pct):
    return b + (a - b) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)

  def at(step):
    step = jnp.asarray(step, jnp.float32)
    up = cos(start, peak, step / max(end1, 1.0))
    down = cos(peak, start / final_div_factor,
               jnp.minimum((step - end1) / max(end2 - end1, 1e-9), 1.0))
    return jnp.where(step <= end1, up, down)

  return at


def schedule(config, steps_per_epoch: int) -> optax.Schedule:
  """Learning rate as a function of the step: constant, cosine, warmup then cosine, or
  PyTorch's one-cycle."""
  lr = learning_rate(config)
  total = max(config.num_epochs * steps_per_epoch, 1)
  name = config.optimizer.schedule
  if name == "constant":
    return optax.constant_schedule(lr)
  if name == "cosine":
    return optax.cosine_decay_schedule(lr, total)
  if name == "onecycle":
    o = config.optimizer
    return onecycle(total, lr, o.pct_start, o.div_factor, o.final_div_factor)
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


def check(check, opt) -> None:
  """config.validate's checks of the optimizer group (check: its collector)."""
  from digitjax import config as config_lib

  inf = float("inf")
  if opt.learning_rate is not None:
    check.in_range("optimizer.learning_rate", opt.learning_rate, 0, inf, lo_open=True)
  check.in_range("optimizer.momentum", opt.momentum, 0, 1, hi_open=True)
  check.in_range("optimizer.warmup_epochs", opt.warmup_epochs, 0, inf)
  if (check.boolean("optimizer.eps_in_sqrt", opt.eps_in_sqrt) and not opt.eps_in_sqrt
      and opt.name != "rmsprop"):
    check.errors.append(f"config.optimizer.eps_in_sqrt=False applies to rmsprop only, not "
                        f"{opt.name!r}; leave it True.")
  check.in_range("optimizer.beta_1", opt.beta_1, 0, 1, hi_open=True)
  check.in_range("optimizer.beta_2", opt.beta_2, 0, 1, hi_open=True)
  check.in_range("optimizer.epsilon", opt.epsilon, 0, inf, lo_open=True)
  check.in_range("optimizer.pct_start", opt.pct_start, 0, 1, True, True)
  check.in_range("optimizer.div_factor", opt.div_factor, 0, inf, lo_open=True)
  check.in_range("optimizer.final_div_factor", opt.final_div_factor, 0, inf, lo_open=True)
  default = config_lib.get_config().optimizer
  for field, readers in READERS.items():
    what, mine = ("schedule ", opt.schedule) if readers[0] in SCHEDULES else ("", opt.name)
    if opt[field] != default[field] and mine not in readers:
      check.errors.append(f"config.optimizer.{field}={opt[field]!r} applies to {what}"
                          f"{', '.join(readers)} only, not {mine!r}; leave it "
                          f"{default[field]!r}.")
