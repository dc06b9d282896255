"""A sweep point's folder name, `axis=value,axis=value`: written by run.py, printed in
the summary's tables, read back by experiments/list_runs.py. Standard library only, so
listing runs stays quick."""
from __future__ import annotations


def slug(value) -> str:
  """A value as a point's name writes it: tuples and lists as 64x32."""
  if isinstance(value, (tuple, list)):
    return "x".join(map(str, value))
  return str(value)


def point_name(setting: dict) -> str:
  """The folder name of the grid point `setting` ({axis: value}, in the sweep's order)."""
  return ",".join(f"{axis}={slug(value)}" for axis, value in setting.items())
