"""Is this the same run? The one answer, wherever a run is matched.

A run's fingerprint is its config less two kinds of field: those that only steer how long
or how often it does things (RUN_CONTROL_FIELDS: extending num_epochs and rerunning
resumes the same run), and those at their default value (a field the schema gains later,
at a default that keeps the old behaviour, leaves every existing run the same run).

Who asks, and how:
- a workdir's config.json and every checkpoint's meta (`config_fingerprint`) record it;
  training, resuming, eval, predict and load compare against it (`require_same`), a
  reader leaving out the fields that change no figure (EVAL_ONLY_FIELDS);
- the seed ledger keys each finished seed by `digest(config, seed)`: equal digests, the
  same experiment, whichever program trained it.
"""
from __future__ import annotations

import copy
import hashlib
import json

from digitjax import config as config_lib
from digitjax.errors import UserError

# Fields that only steer how long / how often a run does things. Changing them does not
# make a workdir belong to "another config" (except num_epochs under a schedule that
# spans it, cosine: workdir.check_schedule).
RUN_CONTROL_FIELDS = ("name", "num_epochs", "checkpoint_every_steps",
                      "checkpoint_every_epochs", "log_every_steps", "steps_per_dispatch",
                      "dataset.data_dir", "dataset.download", "dataset.placement")
# Fields that change how a run is evaluated, never a figure (evaluation batches are
# summed exactly): reading a run under another value of them is the same run.
EVAL_ONLY_FIELDS = ("eval_batch_size",)
META_KEY = "config_fingerprint"  # a checkpoint's meta key for the fingerprint
TRAIN_ADVICE = ("Use another --workdir or the config it was made with, or --fresh to set "
                "the old run aside (renamed, not deleted).")
EVAL_ADVICE = ("Evaluate it under the config it was trained with (its config.json records "
               "it), or point --workdir at a run of this config.")


def fingerprint(config) -> dict:
  """The fields that make a run this run: {'model.name': 'mlp', 'seed': 3, ...}."""
  return from_json(config.to_json_best_effort())


def from_json(text: str) -> dict:
  """The fingerprint of a config.json's text (its provenance record left out)."""
  d = json.loads(text)
  d.pop(config_lib.PROVENANCE, None)  # what the run ran on, not what it is
  defaults = config_lib.defaults()
  return {k: v for k, v in config_lib.flatten(d).items()
          if k not in RUN_CONTROL_FIELDS and (k not in defaults or defaults[k] != v)}


def require_same(recorded: dict | None, config, where: str, reading: bool = False,
                 advice: str = "") -> None:
  """UserError if `recorded` (a fingerprint; None: unreadable) is not config's; `where`
  names what recorded it. A reader (eval, predict, load) leaves EVAL_ONLY_FIELDS out and
  gets a reader's advice; `advice` replaces the advice (a tool's own)."""
  mine = fingerprint(config)
  if reading and recorded is not None:
    recorded = {k: v for k, v in recorded.items() if k not in EVAL_ONLY_FIELDS}
    mine = {k: v for k, v in mine.items() if k not in EVAL_ONLY_FIELDS}
  if recorded != mine:
    raise UserError(f"{where} holds a run of a different config "
                    f"({describe_difference(recorded, mine)}). "
                    + (advice or (EVAL_ADVICE if reading else TRAIN_ADVICE)))


def checkpoint_check(config, reading: bool = False):
  """check(meta, where) for checkpoints.Checkpoints' restores: refuses a checkpoint whose
  meta records another config, or none (a checkpoint no run of digitjax's wrote)."""
  def check(meta: dict, where: str) -> None:
    if META_KEY not in meta:
      raise UserError(f"{where} records no config ({META_KEY}): digitjax did not write "
                      "it. Train the run again with --fresh (the old run is set aside, "
                      "not deleted).")
    require_same(meta[META_KEY], config, where, reading)
  return check


def digest(config, seed: int) -> str:
  """A short digest of seed `seed` of config (its fingerprint with that seed alone): the
  seed ledger's key for a finished seed."""
  c = copy.deepcopy(config)
  c.seed, c.num_seeds = seed, 1
  text = json.dumps(fingerprint(c), sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_difference(theirs: dict | None, mine: dict) -> str:
  """'model.name: cnn_bn -> mlp, seed: 0 -> 1' (at most a few fields)."""
  if theirs is None:
    return "its config.json is unreadable"
  defaults = config_lib.defaults()
  a = {**defaults, **config_lib.flatten(theirs)}
  b = {**defaults, **config_lib.flatten(mine)}
  diffs = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
           if a.get(k) != b.get(k)]
  return ", ".join(diffs[:4]) + (f" and {len(diffs) - 4} more" if len(diffs) > 4 else "")
