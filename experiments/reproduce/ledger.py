"""experiments/results/seeds.csv: every finished seed of every report row, kept in the
repository beside the tables made from it.

Runs live in runs/, which a fresh clone, another machine or the next session does not
have, and a row's seeds can take several sessions (report D's CIFAR-10 rows: one seed per
CPU session). So each reproduce records here the seeds it finds under its workroot, and
builds its tables from these lines and those runs together: seeds add up across
machines and sessions. A line counts for a row only while its `identity` (the digest of
the config it ran, digitjax.fingerprint.digest) is the row's config's today; a config changed since
leaves its old lines in the file and out of the tables.
"""
from __future__ import annotations

import csv
import os

from digitjax import fingerprint

NAME = "seeds.csv"
FIELDS = ("row", "seed", "accuracy", "best_checkpoint", "epochs_run", "wall_seconds",
          "device", "together", "program", "identity", "commit", "date")
_NUMBERS = {"seed": int, "accuracy": float, "best_checkpoint": float, "epochs_run": int,
            "wall_seconds": float, "together": int}


def read(out_dir: str) -> dict[tuple[str, int], dict]:
  """{(row, seed): table entry} of the ledger in out_dir ({} without one)."""
  path = os.path.join(out_dir, NAME)
  if not os.path.exists(path):
    return {}
  with open(path, newline="") as f:
    lines = list(csv.DictReader(f))
  entries = {}
  for line in lines:
    entry = {k: _NUMBERS[k](v) if k in _NUMBERS else v for k, v in line.items()}
    entry["workdir"] = f"{entry['row']}/{entry['program']}"  # counts a program once
    entries[(entry["row"], entry["seed"])] = entry
  return entries


def line(row_id: str, entry: dict) -> dict:
  """A table entry (reproduce._run_entry's, or read()'s) as a ledger line, its numbers
  always written the same way, so that rewriting the ledger changes only new lines."""
  line = {k: entry.get(k, "") for k in FIELDS}
  line.update(row=row_id, program=os.path.basename(entry["workdir"]),
              accuracy=f"{entry['accuracy']:.4f}",
              best_checkpoint=f"{entry['best_checkpoint']:.4f}",
              wall_seconds=f"{entry['wall_seconds']:.1f}")
  return line


def current(row_id: str, config, ledger: dict[tuple[str, int], dict]) -> dict[int, dict]:
  """{seed: line} of the row's ledger lines still of config (the row's config today)."""
  return {seed: e for (row, seed), e in ledger.items()
          if row == row_id and fingerprint.digest(config, seed) == e["identity"]}


def merge(row_id: str, config, found: list[dict],
          ledger: dict[tuple[str, int], dict]) -> list[dict]:
  """The row's entries: its ledger lines still of config, under the entries just found
  in runs/; in seed order."""
  merged = current(row_id, config, ledger)
  merged.update((e["seed"], e) for e in found)
  return [merged[s] for s in sorted(merged)]


def superseded(row_id: str, config, ledger: dict[tuple[str, int], dict]) -> int:
  """How many of the row's ledger lines ran a config other than the row's today."""
  return sum(row == row_id for row, _ in ledger) - len(current(row_id, config, ledger))


def write(out_dir: str, ledger: dict[tuple[str, int], dict], rows: dict[str, list[dict]]):
  """The ledger with rows' entries (row id -> entries) added or replaced, sorted."""
  for row_id, entries in rows.items():
    for e in entries:
      ledger[(row_id, e["seed"])] = e
  lines = [line(key[0], ledger[key]) for key in sorted(ledger)]
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, NAME)
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
  os.replace(tmp, path)
