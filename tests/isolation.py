"""Tests never touch the user's files: what the checkout and the user's cache hold is
listed before each test and compared after it (conftest.py's `_leaves_user_files_alone`).

Watched: the checkout (runs/, configs/, experiments/results/, ...) less what only tools
write (.git, .venv, caches of Python and pytest), and ~/.cache/digitjax, the split cache
digitjax uses outside the tests. Not watched: a workdir whose `.lock` a training held
before the test began (read from /proc/locks, with no lock taken): that training writes
it, and its lock keeps every test out of it.
"""
from __future__ import annotations

import os
import pathlib

SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache",
                ".ruff_cache", ".ipynb_checkpoints"}


def held_lock_inodes() -> set[int]:
  """Inodes of the files some process holds a flock or POSIX lock on (Linux; else none)."""
  try:
    lines = pathlib.Path("/proc/locks").read_text().splitlines()
  except OSError:
    return set()
  inodes = set()
  for line in lines:
    fields = line.split()
    device = next((f for f in fields if f.count(":") == 2), None)
    if device:
      inodes.add(int(device.rsplit(":", 1)[1]))
  return inodes


def snapshot(roots, skipped_dirs=SKIPPED_DIRS) -> dict[str, tuple]:
  """path -> (size, mtime_ns) of every file, and path -> () of every folder, under roots;
  workdirs held by a running training (a locked `.lock`) are left out."""
  locked = held_lock_inodes()
  seen = {}
  for root in map(str, roots):
    if not os.path.isdir(root):
      continue
    for folder, dirs, files in os.walk(root):
      if ".lock" in files and _inode(os.path.join(folder, ".lock")) in locked:
        dirs.clear()
        continue
      dirs[:] = [d for d in dirs if d not in skipped_dirs and not d.endswith(".egg-info")]
      seen[folder] = ()
      for name in files:
        path = os.path.join(folder, name)
        try:
          st = os.stat(path)
        except OSError:  # gone between the listing and the stat
          continue
        seen[path] = (st.st_size, st.st_mtime_ns)
  return seen


def _inode(path) -> int | None:
  try:
    return os.stat(path).st_ino
  except OSError:
    return None


def changes(before: dict, after: dict) -> list[str]:
  """'created PATH', 'changed PATH' and 'deleted PATH' lines, sorted by path."""
  out = [f"created {p}" for p in after.keys() - before.keys()]
  out += [f"deleted {p}" for p in before.keys() - after.keys()]
  out += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]
          and before[p]]  # a folder's listing is compared through its files
  return sorted(out, key=lambda line: line.split(" ", 1)[1])


def watched_roots(checkout) -> list[pathlib.Path]:
  return [pathlib.Path(checkout), pathlib.Path.home() / ".cache" / "digitjax"]
