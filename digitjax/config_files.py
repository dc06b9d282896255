"""Reading config files: `--config=path[:variant]`, sweep files, a file's variants.

A config file is Python (configs as code): it defines get_config() (or get_config(variant)
for a report file of several rows) returning a digitjax.config schema with a few fields
changed. Whatever such a file does wrong (does not import, raises, exits, returns
something else) is one UserError naming the file, its error and its line.
"""
from __future__ import annotations

import importlib.util
import os

import ml_collections

from digitjax import config as config_lib
from digitjax.errors import UserError


def variant(variants: dict, name: str, where: str) -> ml_collections.ConfigDict:
  """The config of variant `name` of a report file (`--config=configs/report_b.py:b1`)."""
  if name not in variants:
    raise UserError(f"{where} has no variant {name!r}; it has {', '.join(variants)}.")
  return variants[name]()


def from_file(path: str, variant: str | None = None,
              beside: str | None = None) -> ml_collections.ConfigDict:
  """The config `--config=path[:variant]` gives, for config files built on another one
  (configs/cnn_bn_plus.py on configs/cnn_bn.py: `beside=__file__` reads `path` next to
  the calling file) and for the experiment runners. A file that does not import, or
  whose get_config fails or returns something else than a ConfigDict, is a UserError
  naming the file and the problem."""
  if beside:
    path = os.path.join(os.path.dirname(os.path.abspath(beside)), path)
  name = "digitjax_config_" + os.path.splitext(os.path.basename(path))[0]
  module = load_module(path, name)
  args = () if variant is None else (variant,)
  config = call_file(path, module, "get_config", args, ml_collections.ConfigDict,
                     "a config file defines get_config() returning an "
                     "ml_collections.ConfigDict, e.g. configs/cnn_bn.py.")
  _check_complete(path, config)
  return config


def _check_complete(path: str, config) -> None:
  """A config built from scratch (`ConfigDict({"seed": 1})`) lacks the schema's groups,
  and every later check would fail on the first missing one with an AttributeError."""
  have = config_lib.flat(config)
  missing = [k for k in config_lib.schema() if k not in have]
  if missing:
    some = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    raise UserError(f"{path}: get_config() returned a config without {len(missing)} of the "
                    f"schema's fields ({some}); build it on digitjax.config.get_config() "
                    "and change fields, as configs/cnn_bn.py does.")


def load_module(path: str, name: str):
  """Runs the Python file `path` as a module; if it raises (a syntax error, a missing
  module, anything), a UserError naming the file, the error and its line."""
  spec = importlib.util.spec_from_file_location(name, path)
  if spec is None:
    raise UserError(f"{path} is not a Python file (.py).")
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except UserError:
    raise
  except SystemExit as e:  # would end the run silently, often with status 0
    raise UserError(f"{path} called sys.exit({e.code!r}) while it was read; a config or "
                    "sweep file only defines what to run, and must not exit.") from None
  except Exception as e:  # noqa: BLE001 - whatever the file raises, the user's to fix
    raise UserError(f"{path} does not import: {_failure(e, path)}.") from e
  return module


def call_file(path: str, module, function: str, args: tuple, returns: type, usage: str):
  """module.function(*args), the function of a config or sweep file: its absence, a
  variant it cannot take (or needs), what it raises, a result that is not a `returns`:
  each one UserError naming `path`."""
  import inspect

  fn = getattr(module, function, None)
  if not callable(fn):
    raise UserError(f"{path} defines no {function}(); {usage}")
  try:
    inspect.signature(fn).bind(*args)
  except TypeError:
    if args:
      raise UserError(f"{path}: {function}() takes no variant, but {path}:{args[0]} names "
                      f"one; leave ':{args[0]}' off.") from None
    raise UserError(f"{path}: {function}() needs a variant, as in {path}:VARIANT.") from None
  except ValueError:  # no signature to read (a builtin): let the call say
    pass
  try:
    result = fn(*args)
  except UserError:
    raise
  except SystemExit as e:
    raise UserError(f"{path}: {function}() called sys.exit({e.code!r}); it must return "
                    f"its result, not exit. {usage}") from None
  except Exception as e:  # noqa: BLE001
    raise UserError(f"{path}: {function}() raised {_failure(e, path)}.") from e
  if result is None:
    raise UserError(f"{path}: {function}() returned None (no return statement?); {usage}")
  if not isinstance(result, returns):
    raise UserError(f"{path}: {function}() returned {type(result).__name__}, not "
                    f"{returns.__name__}; {usage}")
  return result


def _failure(e: Exception, path: str) -> str:
  """'ZeroDivisionError: division by zero (line 4)', the line being path's own."""
  import traceback

  def same(f):
    return bool(f) and os.path.abspath(f) == os.path.abspath(path)

  line, text = None, str(e)
  if isinstance(e, SyntaxError):
    text = e.msg
    line = e.lineno if same(e.filename) else None
  for frame, lineno in traceback.walk_tb(e.__traceback__):
    if same(frame.f_code.co_filename):
      line = lineno
  return f"{type(e).__name__}: {text}" + (f" (line {line})" if line else "")
