"""Same config, same seed, same numbers: reference runs of two checkouts, compared.

  python -m experiments.refactor_check run ROOT OUT    # the runs below, with ROOT's digitjax
  python -m experiments.refactor_check compare A B     # their metrics.jsonl and checkpoints
  python -m experiments.refactor_check speed ROOT_A ROOT_B OUT [N]   # train time, A/B alternated

A refactor of the training loop must not move a number. `run` trains a handful of short
configs (the block-scanned path, host placement, several seeds, a mid-epoch checkpoint
cadence, a run stopped after one epoch and resumed) with the code in ROOT (e.g. a
`git worktree add /tmp/before HEAD`); `compare` then requires, run by run, identical
metrics.jsonl (less its wall-time fields) and bit-identical arrays in every checkpoint.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

SHORT = ["--config.dataset.max_train_examples=12000", "--config.dataset.max_test_examples=2000"]
RUNS = {  # name: list of invocations (each a list of flags) on one workdir
    "cnn_bn": [["--config=configs/cnn_bn.py", "--config.num_epochs=2", *SHORT]],
    "b1_keras_mlp": [["--config=configs/report_b.py:b1_keras_mlp", "--config.num_epochs=2"]],
    "a1_perceptron_3seeds": [["--config=configs/report_a.py:a1_perceptron",
                              "--config.num_seeds=3", "--config.num_epochs=3", *SHORT]],
    "b1_host_ckpt_steps": [["--config=configs/report_b.py:b1_keras_mlp",
                            "--config.num_epochs=2", "--config.dataset.placement=host",
                            "--config.checkpoint_every_steps=40", *SHORT]],
    "cnn_bn_resumed": [["--config=configs/cnn_bn.py", "--config.num_epochs=1", *SHORT],
                       ["--config=configs/cnn_bn.py", "--config.num_epochs=2", *SHORT]],
    # report E's GoogLeNet (auxiliary heads, SGD): one epoch on a few hundred flowers
    "e5_googlenet_small": [["--config=configs/report_e.py:e5_googlenet_sgd",
                            "--config.num_epochs=1", "--config.dataset.max_train_examples=256",
                            "--config.dataset.max_test_examples=128"]],
}
WALL_TIME_FIELDS = ("time",)


def run(root: str, out: str, names=None) -> None:
  env = dict(os.environ, TFDS_DATA_DIR=os.environ.get("TFDS_DATA_DIR",
                                                      "/work/shared/tensorflow_datasets"))
  for name in names or RUNS:
    for flags in RUNS[name]:
      cmd = [sys.executable, "-m", "digitjax.main", *flags,
             f"--workdir={os.path.join(os.path.abspath(out), name)}"]
      print(" ".join(cmd), flush=True)
      subprocess.run(cmd, cwd=root, env=env, check=True)


def _metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  return [{k: v for k, v in r.items() if k not in WALL_TIME_FIELDS} for r in records]


def _checkpoints(workdir: str) -> dict:
  """{'latest/STEP/path/to/leaf': array} for every checkpoint in the workdir."""
  import orbax.checkpoint as ocp

  import jax
  arrays = {}
  for kind in ("latest", "best"):
    folder = os.path.join(workdir, "checkpoints", kind)
    for step in sorted(s for s in os.listdir(folder) if s.isdigit()):
      tree = ocp.StandardCheckpointer().restore(os.path.join(folder, step, "state"))
      for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        arrays[f"{kind}/{step}/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
  return arrays


def compare(a: str, b: str, names=None) -> bool:
  same = True
  for name in names or RUNS:
    wa, wb = os.path.join(a, name), os.path.join(b, name)
    problems = []
    ma, mb = _metrics(wa), _metrics(wb)
    if ma != mb:
      problems.append(f"metrics.jsonl differ:\n    {ma}\n    {mb}")
    ca, cb = _checkpoints(wa), _checkpoints(wb)
    if ca.keys() != cb.keys():
      problems.append(f"checkpoint arrays differ in names: {sorted(ca.keys() ^ cb.keys())[:5]}")
    diff = [k for k in ca.keys() & cb.keys()
            if ca[k].dtype != cb[k].dtype or ca[k].shape != cb[k].shape
            or ca[k].tobytes() != cb[k].tobytes()]
    if diff:
      problems.append(f"{len(diff)} checkpoint arrays differ, e.g. {sorted(diff)[:3]}")
    verdict = "EQUAL" if not problems else "DIFFERENT"
    print(f"{name}: {verdict} ({len(ma)} metric records, {len(ca)} checkpoint arrays)")
    for p in problems:
      print("  " + p)
    same &= not problems
  return same


SPEED_RUN = ["--config=configs/cnn_bn.py", "--config.num_epochs=2", *SHORT]


def speed(root_a: str, root_b: str, out: str, repeats: int = 3) -> float:
  """Trains SPEED_RUN with each checkout's digitjax, alternating A, B, A, B... so both
  see the same load; prints each run's training seconds (results.json's train_seconds:
  the loop, less start-up and the final test) and the ratio of the medians, B over A."""
  env = dict(os.environ, TFDS_DATA_DIR=os.environ.get("TFDS_DATA_DIR",
                                                      "/work/shared/tensorflow_datasets"))
  seconds = {root_a: [], root_b: []}
  for i in range(repeats):
    for root in (root_a, root_b):
      workdir = os.path.join(os.path.abspath(out), f"{os.path.basename(root)}-{i}")
      subprocess.run([sys.executable, "-m", "digitjax.main", *SPEED_RUN,
                      f"--workdir={workdir}"], cwd=root, env=env, check=True,
                     stdout=subprocess.DEVNULL)
      with open(os.path.join(workdir, "results.json")) as f:
        seconds[root].append(json.load(f)["train_seconds"])
      print(f"{root}: {seconds[root][-1]:.1f} s", flush=True)
  a, b = (float(np.median(seconds[r])) for r in (root_a, root_b))
  print(f"median train seconds: A {a:.1f}, B {b:.1f}; B/A = {b / a:.3f}")
  return b / a


if __name__ == "__main__":
  command, x, y, *rest = sys.argv[1:]
  if command == "run":
    run(x, y, rest or None)
  elif command == "speed":
    speed(x, y, rest[0], int(rest[1]) if len(rest) > 1 else 3)
  else:
    sys.exit(0 if compare(x, y, rest or None) else 1)
