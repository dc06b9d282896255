"""What made a run: the command that started it, the code (git commit, and a hash of the
changes when the tree had any), Python's and the libraries' versions, the device (GPU
kind, or the CPU's model), the dataset's prepared version, the date and the host.

"Same config and seed, same numbers" holds for one environment: XLA, jax or a GPU
kernel can move the last digits. config.json and results.json record this, so two runs
that disagree can be told apart by what they ran on.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
            "tensorflow", "numpy")
_COMMAND = {}  # set by note_command: the command line that started this process's run


def _git(*args: str) -> str | None:
  """git's output in the checkout digitjax runs from; None outside a checkout (an
  installed wheel) or where git is missing."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(["git", "-C", here, *args], capture_output=True, text=True,
                         timeout=10)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def code() -> dict:
  """{'commit': sha or None, 'dirty': bool or None, 'diff_sha256': the hash of `git diff
  HEAD` when dirty}: changes to tracked files count as dirty (untracked files, such as
  runs/, do not); two dirty runs with one hash ran the same code."""
  commit = _git("rev-parse", "HEAD")
  status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
  out = dict(commit=commit, dirty=None if status is None else bool(status))
  if status:
    diff = _git("diff", "HEAD") or ""
    out["diff_sha256"] = hashlib.sha256(diff.encode()).hexdigest()[:16]
  return out


def note_command(argv: list[str]) -> None:
  """Records the command line of `python -m digitjax.main` (argv: sys.argv): the whole
  command, the config file and variant (--config) and the overrides (--config.FIELD)."""
  args = list(argv[1:])
  spec = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
  spec = spec or next((b for a, b in zip(args, args[1:]) if a == "--config"), None)
  _COMMAND.update(command=shlex.join(["python", "-m", "digitjax.main", *args]),
                  config_file=spec,
                  overrides=[a for a in args if a.startswith("--config.")])


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo on Linux), else what platform knows."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def versions() -> dict:
  """{package: version or None (not installed)}."""
  found = {}
  for name in PACKAGES:
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      found[name] = None
  return found


def record(config=None) -> dict:
  """Everything above, with the device kind and count, the CPU, the dataset and its
  prepared version (config's), the UTC date and the host."""
  import jax

  out = dict(**_COMMAND, **code(), python=platform.python_version(), versions=versions(),
             device_kind=jax.devices()[0].device_kind, device_count=jax.device_count(),
             platform=jax.default_backend(), cpu=cpu_model(),
             date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             host=socket.gethostname())
  if config is not None:
    from digitjax import npz_source, split_cache
    version = None if npz_source.npz_dir() else split_cache.prepared_version(config)
    out["dataset"] = dict(name=config.dataset.name, version=version)
  return out
