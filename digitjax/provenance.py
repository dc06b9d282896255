"""What made a run: the code (git commit, and whether the tree had changes), the library
versions, the device, the date and the host.

"Same config and seed, same numbers" holds for one environment: XLA, jax or a GPU
kernel can move the last digits. config.json and results.json record this, so two runs
that disagree can be told apart by what they ran on.
"""
from __future__ import annotations

import datetime
import functools
import importlib.metadata
import os
import socket
import subprocess

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
            "numpy")


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
  """{'commit': sha or None, 'dirty': bool or None}: changes to tracked files count as
  dirty (untracked files, such as runs/, do not)."""
  commit = _git("rev-parse", "HEAD")
  status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
  return dict(commit=commit, dirty=None if status is None else bool(status))


def versions() -> dict:
  """{package: version or None (not installed)}."""
  found = {}
  for name in PACKAGES:
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      found[name] = None
  return found


def record() -> dict:
  """Everything above, with the device kind and count, the UTC date and the host."""
  import jax

  return dict(**code(), versions=versions(), device_kind=jax.devices()[0].device_kind,
              device_count=jax.device_count(), platform=jax.default_backend(),
              date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              host=socket.gethostname())
