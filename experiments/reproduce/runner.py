"""What the experiment runners share: the seed layout of a workdir folder, the one
"finished" rule, quick mode, seeds trained together, and reading results back.

reproduce (a report row) and sweep (a grid point) both train one config over seeds
0..n-1 into a folder of their own:

  <folder>/seed<k>          seed k alone (config.seed=k, num_seeds=1)
  <folder>/seeds<a>-<b>     seeds a..b trained side by side in one vmapped program

`run_seeds` reads back every seed already finished there, in either layout (a GPU trains
seeds together, a CPU one by one: a folder started on one finishes on the other), and
trains only the missing ones, each through digitjax.main.run, so an interrupted one
resumes from its checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import re
import sys
from unittest import mock

from digitjax import fingerprint
from digitjax.errors import UserError

# quick: the smallest input each large family accepts (the aux heads of GoogLeNet need
# 99 px, its stem pools being 'valid'; AlexNet's three strided pools 67); everything
# else keeps its real size.
QUICK_IMAGE_SIZE = {"vgg16": 32, "vgg16_app": 32, "alexnet": 72, "googlenet": 99,
                    "flowers_cnn": 64}  # E6: four valid convs need 64
MOCK_EXAMPLES = 64


def quick(config):
  """A copy of config cut to one epoch of a few steps on a tiny subset: checks a
  runner end to end (CI, tests), its figures meaning nothing."""
  c = config.copy_and_resolve_references()
  c.num_epochs = 1
  c.batch_size = min(c.batch_size, 16)
  c.eval_batch_size = 32
  c.dataset.max_train_examples = 64
  c.dataset.max_test_examples = 32
  if c.model.name in QUICK_IMAGE_SIZE:
    c.dataset.image_size = QUICK_IMAGE_SIZE[c.model.name]
  return c


@contextlib.contextmanager
def mock_tfds(num_examples: int = MOCK_EXAMPLES):
  """tfds.testing.mock_data (random examples at the dataset's real feature shapes), with
  is_prepared() true so digitjax.data reads them instead of refusing to download."""
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=num_examples,
                              policy=tfds.testing.MockPolicy.USE_CODE), \
      mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", lambda self: True):
    yield


def quick_data(config):
  """Where a quick run reads: the real dataset when it is prepared, else mock data at
  its real shapes (the plumbing is the point, not the figures)."""
  from digitjax import data

  return contextlib.nullcontext() if data.is_prepared(config) else mock_tfds()


@dataclasses.dataclass
class SeedRun:
  """One finished seed: its entry of results.json's per_seed, and the program it ran in."""
  seed: int
  result: dict
  workdir: str
  wall_seconds: float  # the program's: seeds trained together share it
  device: str
  together: int  # how many seeds that program trained
  identity: str = ""  # fingerprint.digest(config, seed) of the config it ran
  provenance: dict = dataclasses.field(default_factory=dict)  # results.json's


def dirname(block: list[int]) -> str:
  return f"seed{block[0]}" if len(block) == 1 else f"seeds{block[0]}-{block[-1]}"


def parse_dirname(name: str) -> list[int] | None:
  """The seeds a folder name holds (dirname's inverse); None for any other name."""
  m = re.fullmatch(r"seed(\d+)|seeds(\d+)-(\d+)", name)
  if not m:
    return None
  first, last = int(m.group(1) or m.group(2)), int(m.group(1) or m.group(3))
  return list(range(first, last + 1)) or None


def seed_blocks(seeds: list[int], together: bool) -> list[list[int]]:
  """The programs that train `seeds`: one per seed, or (together) one per run of
  consecutive seeds ([0, 1, 3] -> [[0, 1], [3]])."""
  blocks = []
  for s in seeds:
    if together and blocks and blocks[-1][-1] == s - 1:
      blocks[-1].append(s)
    else:
      blocks.append([s])
  return blocks


def per_seed(results: dict) -> list[dict]:
  """results.json's per-seed entries (every run records them, one seed or several)."""
  return results["per_seed"]


def seed_runs(results: dict, workdir: str, config) -> dict[int, SeedRun]:
  entries = per_seed(results)
  return {p["seed"]: SeedRun(p["seed"], p, workdir, results["wall_seconds"],
                             results.get("device_kind", "cpu"), len(entries),
                             fingerprint.digest(config, p["seed"]), results.get("provenance", {}))
          for p in entries}


def finished(workdir: str, config, advice: str = "") -> dict | None:
  """The results of a finished run of this very config in workdir, else None: no
  results.json (or an unreadable one), or fewer epochs than config.num_epochs now asks
  for (num_epochs is not part of a run's identity; main.run resumes and trains on).
  A workdir holding another config (or an unreadable config.json) is a UserError: its
  numbers are not this config's, and reusing them would put them in a table as if."""
  from digitjax import workdir as workdir_lib

  if not os.path.exists(os.path.join(workdir, "results.json")):
    return None
  workdir_lib.check_config(config, workdir, advice=advice)
  if not os.path.exists(os.path.join(workdir, "config.json")):
    raise UserError(f"{workdir} holds results.json but no config.json: whose run it is "
                    "cannot be told. Move it aside to run it again.")
  results = workdir_lib.read_results(workdir)
  if results is None or any(
      not p.get("stopped_early") and p.get("epochs_run", 0) < config.num_epochs
      for p in per_seed(results)):
    return None
  return results


def finished_seeds(config, folder: str, advice: str = "",
                   skip_others: bool = False) -> dict[int, SeedRun]:
  """Every finished seed of config under folder, in either layout; a seed found in two
  folders counts once (its one-seed run first). skip_others: a folder holding another
  config is passed over with a warning instead of refused (reading tables back)."""
  names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
  found = {}
  for name in sorted(names, key=lambda n: n.startswith("seeds")):  # seed<k> first
    block = parse_dirname(name)
    if block is None:
      continue
    c = copy.deepcopy(config)
    c.seed, c.num_seeds = block[0], len(block)
    workdir = os.path.join(folder, name)
    try:
      results = finished(workdir, c, advice)
    except UserError as e:
      if not skip_others:
        raise
      print(f"warning: skipped: {e}", file=sys.stderr)
      continue
    if results is not None:
      for seed, run in seed_runs(results, workdir, config).items():
        found.setdefault(seed, run)
  return found


def run_seeds(config, folder: str, seeds: list[int], together: bool = False,
              advice: str = "", done: dict[int, SeedRun] | None = None) -> list[SeedRun]:
  """Seeds `seeds` of config under folder, training the ones not finished yet (each
  program through digitjax.main.run, which resumes an interrupted one); in seed order.
  A run stopped by a signal raises KeyboardInterrupt (its checkpoint is saved: rerunning
  the same command resumes it). done: finished_seeds' answer, when the caller has it."""
  from digitjax import main

  done = dict(finished_seeds(config, folder, advice) if done is None else done)
  for block in seed_blocks([s for s in seeds if s not in done], together):
    c = copy.deepcopy(config)
    c.seed, c.num_seeds = block[0], len(block)
    workdir = os.path.join(folder, dirname(block))
    results = main.run(c, workdir)
    if results.get("interrupted"):
      raise KeyboardInterrupt(results["interrupted"])
    done.update(seed_runs(results, workdir, config))
  return [done[s] for s in seeds]
