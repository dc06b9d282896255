"""Seeds vmapped in one program, several devices, several processes: same numbers."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import ROOT, npz_data, read_history, tiny_config
from digitjax import checkpoints, main, trainer as trainer_lib


@pytest.fixture(scope="module", autouse=True)
def _npz_data(tmp_path_factory):
  """Random MNIST-shaped .npz splits (600 examples each) through $DIGITJAX_NPZ_DIR, in
  this process and in the CLI's: the same numbers, whatever the data."""
  with npz_data(tmp_path_factory.mktemp("npz")):
    yield

TOL = dict(rtol=2e-4, atol=2e-5)



def _close(a, b, keys=("loss", "accuracy", "val_loss", "val_accuracy")):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    for k in keys:
      np.testing.assert_allclose(x[k], y[k], **TOL, err_msg=k)


def test_vmapped_seeds_equal_separate_runs(tmp_path):
  overrides = {"model.dropout": 0.2, "num_epochs": 2}
  together = main.run(tiny_config(num_seeds=3, **overrides), str(tmp_path / "k3"))
  assert together["seeds"] == [0, 1, 2] and len(together["per_seed"]) == 3
  history = read_history(tmp_path / "k3")
  accs = []
  for k in range(3):
    alone = main.run(tiny_config(seed=k, **overrides), str(tmp_path / f"s{k}"))
    np.testing.assert_allclose(together["per_seed"][k]["test_loss"], alone["test_loss"], **TOL)
    _close([h for h in history if h["seed"] == k], read_history(tmp_path / f"s{k}"))
    accs.append(alone["test_accuracy"])
  assert together["test_accuracy"] == pytest.approx(np.mean(accs), abs=1e-3)
  assert together["test_accuracy_std"] == pytest.approx(np.std(accs, ddof=1), abs=1e-3)
  # eval mode restores every seed's best state
  again = main.run(tiny_config(num_seeds=3, **overrides), str(tmp_path / "k3"), mode="eval")
  assert [p["test_loss"] for p in again["per_seed"]] == [
      p["test_loss"] for p in together["per_seed"]]


def _cli(workdir, env=None, *extra):
  cmd = [sys.executable, "-m", "digitjax.main", "--config=tests/tiny_config.py",
         f"--workdir={workdir}", "--config.model.dropout=0.2", *extra]
  return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, **(env or {})),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  return out


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("one_device")
  _finish(_cli(workdir))
  return workdir


def test_four_devices_match_one(tmp_path, one_device):
  four = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  _finish(_cli(tmp_path, four))
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["devices"] == 4
  _close(read_history(tmp_path), read_history(one_device))


def test_two_processes_match_one(tmp_path, one_device):
  """Two CPU processes joined by jax.distributed (as `launch.sh --processes 2` does)."""
  port = str(20000 + os.getpid() % 20000)
  procs = [_cli(tmp_path, dict(DIGITJAX_NUM_PROCESSES="2", DIGITJAX_PROCESS_ID=str(i),
                               DIGITJAX_COORDINATOR=f"localhost:{port}"))
           for i in range(2)]
  outs = [_finish(p) for p in procs]
  assert "Epoch 2/2" in outs[0] and "Epoch" not in outs[1]  # only process 0 reports
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["processes"] == 2 and results["devices"] == 2
  _close(read_history(tmp_path), read_history(one_device))


def test_same_seed_same_checkpoint_contents(tmp_path):
  """Identical arrays in the checkpoints of two runs with one config and seed."""
  c = tiny_config(**{"model.dropout": 0.2})
  for name in ("a", "b"):
    main.run(c, str(tmp_path / name))
  abstract = trainer_lib.Trainer(c, 5).abstract_state()
  states = []
  for name in ("a", "b"):
    ckpts = checkpoints.Checkpoints(str(tmp_path / name))
    states.append(ckpts.restore_latest(abstract)[0])
    ckpts.close()
  for x, y in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
