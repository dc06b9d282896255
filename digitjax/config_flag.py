"""The --config flag and its --config.* overrides, checked before and after ml_collections
parses them, so that every mistake is one UserError naming the argument.

ml_collections defers a --config file it cannot find to the config's first use (an
OSError traceback), lets whatever the file raises escape as a traceback, and answers an
override of a field that does not exist, or of the wrong type, with a bare KeyError or
TypeError. digitjax.main.parse_flags calls `preload` before absl parses the flags and
`override_message` for what the parse raises.
"""
from __future__ import annotations

import copy
import os
import types

from digitjax import config_files
from digitjax import validation
from digitjax.errors import UserError


def preload(argv) -> None:
  """Loads each --config file through config_files.from_file (one line, naming the file,
  for whatever is wrong), checks --config.model.* against the model's own fields, and
  hands the loaded config to ml_collections so the file runs once a run."""
  specs = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")]
  specs += [b for a, b in zip(argv[1:], argv[2:]) if a == "--config"]
  for spec in specs:
    path, *variant = spec.split(":", 1)  # as ml_collections splits it
    if not os.path.isfile(path):
      raise UserError(f"config file {path} not found (--config={spec}). The shipped configs "
                      "are in configs/, e.g. --config=configs/cnn_bn.py.")
    config = config_files.from_file(path, *variant)
    _check_model_overrides(config, argv)
    _hand_to_ml_collections(path, config)


def override_message(argv, error: Exception) -> str:
  """What absl's parse raised, as one sentence pointing at the --config.* overrides."""
  inner = error.args[0] if error.args and isinstance(error.args[0], Exception) else error
  if isinstance(inner, KeyError):
    message = f"the config has no field {str(inner.args[0]).strip(chr(34))}"
  else:
    message = str(inner)
  # ml_collections puts its "Did you mean" on a line of its own: one line, one message
  message = ". ".join(line.strip() for line in message.splitlines() if line.strip())
  bad = [a for a in argv[1:] if a.startswith("--config.")]
  hint = (" Check the --config.* overrides (" + " ".join(bad) + ") against the fields "
          "in digitjax/config.py.") if bad else ""
  end = "" if message.endswith((".", "?", "!")) else "."  # the join stripped each line
  return f"{message}{end}{hint}"


def _hand_to_ml_collections(path: str, config) -> None:
  """ml_collections would run the config file a second time to parse --config; give it
  the config just loaded (a copy) instead, so a file's side effects happen once a run.
  Its loader is private: where it has moved, the file simply runs twice, as before."""
  from ml_collections.config_flags import config_flags as cf

  load = getattr(cf, "_LoadConfigModule", None)
  if load is None:
    return
  original = getattr(load, "digitjax_original", load)

  def load_once(name, wanted):
    if os.path.abspath(wanted) == os.path.abspath(path):
      return types.SimpleNamespace(get_config=lambda *_: copy.deepcopy(config))
    return original(name, wanted)

  load_once.digitjax_original = original
  cf._LoadConfigModule = load_once


def _check_model_overrides(config, argv) -> None:
  """--config.model.FIELD where FIELD is another model family's own (flowers_cnn's
  batch_norm on the MLP): one line naming the fields this family has, where
  ml_collections would only say that the config has no such field."""
  for arg in argv[1:]:
    field = arg.split("=", 1)[0].removeprefix("--config.model.")
    if arg.startswith("--config.model.") and field not in config.model:
      probe = config.copy_and_resolve_references()
      probe.model[field] = None
      errors = [e for e in validation.unknown_fields(probe)
                if e.startswith(f"config.model.{field} is not a field of model")]
      if errors:
        raise UserError(f"{arg}: {errors[0]}")
