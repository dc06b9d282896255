"""--mode=summary: what a command would train, looked at before it trains.

  python -m digitjax.main --config=configs/report_a.py:a2_mlp1 --mode=summary

prints the config file's variants (the one chosen marked), the resolved config with every
override applied, the Keras-style model summary with its parameter counts, and what
training would do with the workdir (create it, resume it, or refuse it and why). It trains
nothing and writes nothing: no workdir, no data read, no checkpoint; a config mistake is
the one-line error training would give, found without waiting for data or compilation.
"""
from __future__ import annotations

import inspect
import os

from digitjax.errors import UserError


def variants(spec: str | None) -> tuple[list[str], str | None] | None:
  """(variant names, the default one) of the config file `spec` (`path[:variant]`) names,
  from its VARIANTS dict as configs/report_*.py define it; None for a file without
  variants. Reads the file once more (config files only define configs)."""
  from digitjax import config_files

  if not spec:
    return None
  path = spec.split(":", 1)[0]
  module = config_files.load_module(path, "digitjax_variants_" + os.path.basename(path)[:-3])
  names = getattr(module, "VARIANTS", None)
  if not isinstance(names, dict) or not names:
    return None
  try:
    params = list(inspect.signature(module.get_config).parameters.values())
    default = params[0].default if params else None
  except (TypeError, ValueError, AttributeError):
    default = None
  return list(names), default if isinstance(default, str) else None


def workdir_state(config, workdir: str) -> str:
  """What --mode=train would do with workdir, read without creating or locking anything."""
  from digitjax import checkpoints, workdir as workdir_lib

  try:
    workdir_lib.check_path(workdir)
  except UserError as e:
    return f"training would refuse it: {e}"
  if not os.path.exists(workdir):
    return "does not exist yet: training creates it."
  try:
    workdir_lib.check_config(config, workdir)
    workdir_lib.check_schedule(config, workdir)
  except UserError as e:
    return f"training would refuse it: {e}"
  if not os.path.exists(os.path.join(workdir, "config.json")):
    return "exists and holds no run: training starts one there."
  finished = workdir_lib.read_results(workdir) is not None
  if checkpoints.saved_any(workdir):
    return ("holds a " + ("finished " if finished else "") + "run of this config: training "
            "resumes it from its latest checkpoint (--fresh sets it aside and starts over).")
  return "holds a run of this config that saved no checkpoint yet: training starts it over."


def show(config, workdir: str, spec: str | None = None) -> dict:
  """Prints the summary (see the module docstring); returns its parts as a dict."""
  from digitjax import data, models

  info = data.DATASETS[config.dataset.name]
  shape = data.image_shape(config)
  models.check_input(config, shape, info.num_classes)
  table, totals = models.summary(models.build(config, info.num_classes), shape,
                                 config.model.name)
  found = variants(spec)
  lines = []
  if found:
    names, default = found
    chosen = spec.split(":", 1)[1] if ":" in spec else default
    marked = [f"{n} (this one)" if n == chosen else n for n in names]
    lines.append(f"Variants of {spec.split(':', 1)[0]} (choose with FILE:VARIANT"
                 + (f"; default {default}" if default else "") + "): " + ", ".join(marked))
  lines += ["", "Config (resolved, overrides applied):", "",
            str(config.copy_and_resolve_references()).rstrip(), "", table, "",
            f"Parameters: {totals['total']:,} ({totals['trainable']:,} trainable, "
            f"{totals['non_trainable']:,} non-trainable); input {'x'.join(map(str, shape))}, "
            f"{info.num_classes} classes ({config.dataset.name}).",
            f"Workdir {workdir}: {workdir_state(config, workdir)}",
            "Nothing was trained or written (--mode=summary)."]
  print("\n".join(lines).lstrip("\n"))
  return dict(totals, workdir=workdir, input_shape=shape,
              variants=found[0] if found else None)
