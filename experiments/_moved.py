"""The command names experiments/ had before it was sorted into folders, kept one release.

Each old module (experiments/bench.py, ...) is three lines that call `run`: a script or
a note that still says `python -m experiments.bench` works as before, and says once, on
stderr, where the command went. Delete the old modules and this file in the next release.
"""
import runpy
import sys


def run(old: str, new: str) -> None:
  """Runs module `new` as the interpreter's -m option would, with this process's
  arguments; its exit status is this process's (runpy lets its SystemExit through)."""
  print(f"{old} moved to {new}; this name goes in the next release", file=sys.stderr)
  runpy.run_module(new, run_name="__main__", alter_sys=True)
