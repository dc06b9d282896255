"""Is this config usable? One sentence per problem, before any data is read.

`validate(config)` checks a config against the schema (digitjax.config): unknown fields
(a misspelling would otherwise train on the default), names against the registries that
own them (datasets, model families, optimizers), ranges, and the chosen model family's
own fields by the family's own check. A typo or an out-of-range value costs the user one
clear message, not a traceback ten minutes in.
"""
from __future__ import annotations

import difflib
import math

import ml_collections

from digitjax.config import (LOSSES, MONITORS, ON_NONFINITE, OUTPUT_ACTIVATIONS, PLACEMENTS,
                             flat, schema)


def unknown_fields(config: ml_collections.ConfigDict) -> list[str]:
  """One sentence per field of `config` that neither the shared schema (get_config())
  nor the chosen model family has, naming the nearest valid names (or, for another
  family's field, the fields this one has). ConfigDict lets a config file add any key,
  so a misspelt `c.model.hiden_units = (64,)` would otherwise train on the default."""
  from digitjax import models

  own = {f"model.{k}" for k in models.own_fields(config.model.get("name"))}
  known = [*schema(), *sorted(own)]
  groups = {k.rsplit(".", 1)[0] for k in known if "." in k}
  others = {f"model.{k}" for family in models.FAMILIES.values() for k in family.fields} - own
  errors = []
  for key, value in flat(config).items():
    if key in known:
      continue
    if key in groups:
      errors.append(f"config.{key}={value!r} replaces a group of fields; set its fields "
                    f"instead, e.g. config.{min(k for k in known if k.startswith(key + '.'))}.")
    elif key in others:
      errors.append(f"config.{key} is not a field of model {config.model.name!r}; its "
                    "fields: " + ", ".join(k[6:] for k in known if k.startswith("model."))
                    + ".")
    else:
      errors.append(f"config.{key} is not a field of the config; nearest valid: "
                    f"{', '.join(_nearest(key, known, groups))}.")
  return errors


def _nearest(key: str, schema: list, groups: set) -> list[str]:
  near = difflib.get_close_matches(key, [*schema, *groups], n=3, cutoff=0.6)
  if near:
    return near
  group = key.rsplit(".", 1)[0] if "." in key else ""  # the fields of its group, or the
  if group in groups:  # top-level ones
    return [k for k in schema if k.rsplit(".", 1)[0] == group]
  return [k for k in schema if "." not in k]


class _Checks:
  """Collects one sentence per problem; the checks below name the field they read."""

  def __init__(self, config):
    self.errors = []
    # NaN passes every range check (NaN < lo and NaN > hi are both False) and inf passes
    # the unbounded ones: refuse both in any field, once, before the range checks.
    self.nonfinite = set()
    for key, value in flat(config).items():
      if any(isinstance(v, float) and not math.isfinite(v)
             for v in (value if isinstance(value, list) else [value])):
        self.nonfinite.add(key)
        self.errors.append(f"config.{key}={value!r} must be a finite number, not NaN or "
                           "infinity.")

  def one_of(self, path, value, valid):
    if value not in valid:
      self.errors.append(f"config.{path}={value!r} is not known; valid: "
                         f"{', '.join(sorted(valid))}.")

  def in_range(self, path, value, lo, hi, lo_open=False, hi_open=False, kind=(int, float)):
    if path in self.nonfinite:
      return
    if isinstance(value, bool) or not isinstance(value, kind):
      self.errors.append(f"config.{path}={value!r} must be a number.")
      return
    bad = (value <= lo if lo_open else value < lo) or (value >= hi if hi_open else value > hi)
    if bad:
      lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
      self.errors.append(f"config.{path}={value!r} is out of range; it must lie in "
                         f"{lb}{lo}, {hi}{rb}.")

  def positive_ints(self, path, value, example):
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in value):
      self.errors.append(f"config.{path}={value!r} must be a tuple of positive ints, e.g. "
                         f"--config.{path}='{example}'.")

  def boolean(self, path, value):
    if not isinstance(value, bool):
      self.errors.append(f"config.{path}={value!r} must be True or False.")
      return False
    return True


def validate(config: ml_collections.ConfigDict) -> list[str]:
  """Every problem with `config`, one sentence each; an empty list means it is usable.

  Names are checked against the registries of the modules that own them, so adding a
  model or optimizer there is all it takes to make it valid here.
  """
  check = _Checks(config)
  check.errors.extend(unknown_fields(config))
  if any("replaces a group" in e for e in check.errors):
    return check.errors  # the checks below read that group's fields
  _check_names(check, config)
  _check_seed(check, config)
  _check_numbers(check, config)
  _check_model(check, config)
  return check.errors


def _check_names(check: _Checks, config) -> None:
  from digitjax import data, models, optim  # the registries; imported late to stay light

  check.one_of("dataset.name", config.dataset.name, data.DATASETS)
  check.one_of("model.name", config.model.name, models.FAMILIES)
  check.one_of("model.output_activation", config.model.output_activation, OUTPUT_ACTIVATIONS)
  check.one_of("model.hidden_activation", config.model.hidden_activation, models.ACTIVATIONS)
  check.one_of("model.conv_impl", config.model.conv_impl, models.CONV_IMPLS)
  check.one_of("model.init", config.model.init, models.INITS)
  check.one_of("optimizer.name", config.optimizer.name, optim.OPTIMIZERS)
  check.one_of("optimizer.schedule", config.optimizer.schedule, optim.SCHEDULES)
  check.one_of("monitor", config.monitor, MONITORS)
  check.one_of("loss", config.loss, LOSSES)
  check.one_of("dataset.placement", config.dataset.placement, PLACEMENTS)
  check.one_of("on_nonfinite", config.on_nonfinite, ON_NONFINITE)


def _check_seed(check: _Checks, config) -> None:
  seed, num_seeds = config.seed, config.num_seeds
  if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
    check.errors.append(
        f"config.seed={seed!r} must be a whole number in [0, 2**32): JAX's seeds are "
        "32-bit, so 2**32 and above would repeat the numbers of a smaller seed (2**32 "
        "those of seed 0).")
  elif isinstance(num_seeds, int) and seed + num_seeds > 2**32:
    check.errors.append(
        f"config.seed={seed} with config.num_seeds={num_seeds} trains seeds up to "
        f"{seed + num_seeds - 1}; they must stay below 2**32 ({2**32}).")


def _check_numbers(check: _Checks, config) -> None:
  from digitjax import optim

  inf, in_range = float("inf"), check.in_range
  in_range("dataset.validation_fraction", config.dataset.validation_fraction, 0, 1,
           hi_open=True)
  _check_validation_users(check, config)
  in_range("loss_clip", config.loss_clip, 0, 0.5, hi_open=True)
  if config.loss_clip and config.loss != "cross_entropy":
    check.errors.append(f"config.loss_clip={config.loss_clip!r} applies to cross_entropy "
                        f"only, not {config.loss!r}; leave it 0.")
  in_range("model.dropout", config.model.dropout, 0, 1, hi_open=True)
  in_range("model.l2", config.model.l2, 0, inf)
  optim.check(check, config.optimizer)
  plateau = config.reduce_on_plateau
  in_range("reduce_on_plateau.factor", plateau.factor, 0, 1, True, True)
  in_range("reduce_on_plateau.patience", plateau.patience, 0, inf)
  in_range("reduce_on_plateau.min_delta", plateau.min_delta, 0, inf, lo_open=True)
  in_range("reduce_on_plateau.min_lr", plateau.min_lr, 0, inf)
  in_range("early_stopping.patience", config.early_stopping.patience, 0, inf)
  in_range("early_stopping.min_delta", config.early_stopping.min_delta, 0, inf)
  aug = config.augment
  in_range("augment.noise_std", aug.noise_std, 0, inf)
  in_range("augment.rotation_range", aug.rotation_range, 0, 180)
  in_range("augment.zoom_range", aug.zoom_range, 0, 1, hi_open=True)
  in_range("augment.width_shift_range", aug.width_shift_range, 0, 1, hi_open=True)
  in_range("augment.height_shift_range", aug.height_shift_range, 0, 1, hi_open=True)
  check.boolean("augment.horizontal_flip", aug.horizontal_flip)
  check.boolean("augment.vertical_flip", aug.vertical_flip)
  for path in ("num_seeds", "batch_size", "eval_batch_size", "num_epochs", "log_every_steps",
               "checkpoint_every_epochs"):
    in_range(path, config[path], 1, inf, kind=int)
  for path in ("checkpoint_every_steps", "steps_per_dispatch", "dataset.max_train_examples",
               "dataset.max_test_examples", "dataset.image_size", "dataset.split_seed"):
    value = config
    for part in path.split("."):
      value = value[part]
    in_range(path, value, 0, inf, kind=int)


def has_validation(config) -> bool:
  """Whether config holds a validation set back: a validation_split, or a fraction > 0."""
  return bool(config.dataset.validation_split) or config.dataset.validation_fraction != 0


def _check_validation_users(check: _Checks, config) -> None:
  """Early stopping and plateau read config.monitor on the validation set: without one
  they would watch nothing."""
  if has_validation(config):
    return
  for group in ("early_stopping", "reduce_on_plateau"):
    if config[group].enabled is True:
      check.errors.append(
          f"config.{group}.enabled=True watches {config.monitor} on the validation set, "
          "and config.dataset.validation_fraction=0 holds none back; set a "
          f"validation_fraction (e.g. 0.1) or --config.{group}.enabled=False.")


def _check_model(check: _Checks, config) -> None:
  """The shared hidden_units, and the chosen family's own fields (at their defaults
  where the config leaves them out), by the family's own check."""
  from digitjax import models

  family = models.FAMILIES.get(config.model.name)
  if family is None:
    return
  m = models.settings(config.model)
  check.positive_ints("model.hidden_units", m.hidden_units, "(256,128)")
  if family.check:
    family.check(check, m)
