"""experiments.list_runs lists every workdir under a folder; launch.sh's runs, reproduce, --help."""
import json
import os
import socket
import subprocess
import sys

from conftest import ROOT
from experiments import list_runs


def _workdir(path, name, seed=0, num_seeds=1, epochs=0, results=None, lock=None):
  path.mkdir(parents=True)
  (path / "config.json").write_text(json.dumps(dict(name=name, seed=seed,
                                                    num_seeds=num_seeds)))
  lines = [json.dumps(dict(epoch=e, seed=s, time=10.0, val_accuracy=0.5 + 0.1 * e + 0.01 * s))
           for e in range(1, epochs + 1) for s in range(seed, seed + num_seeds)]
  if lines:
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
  if results is not None:
    (path / "results.json").write_text(results if isinstance(results, str)
                                       else json.dumps(results))
  if lock:
    (path / ".lock").write_text(lock)
  (path / "checkpoints").mkdir()


def _tree(root):
  _workdir(root / "b_finished", "report_b/b1", epochs=3,
           results=dict(test_accuracy=0.9812, wall_seconds=125.0))
  _workdir(root / "a_stopped", "report_a/a1", epochs=2)
  _workdir(root / "sweep" / "p=1", "sweep/x", num_seeds=3, epochs=4,
           results=dict(per_seed=[], test_accuracy=0.97, wall_seconds=4000.0))
  _workdir(root / "sweep" / "p=1" / "seed0", "sweep/x", epochs=1)  # nested run
  _workdir(root / "c_empty", "report_c/c1")
  _workdir(root / "d_damaged", "report_d/d1", epochs=2, results='{"test_acc')
  _workdir(root / "e_running", "report_e/e1", epochs=1,
           lock=f"pid {os.getpid()} on {socket.gethostname()}, since now: test")
  _workdir(root / "f_dead", "report_e/e1", epochs=1,
           lock=f"pid 999999999 on {socket.gethostname()}, since then: test")
  (root / "c_empty" / "checkpoints" / "config.json").write_text("{}")  # not a run
  (root / "notes").mkdir()
  (root / "bad").mkdir()
  (root / "bad" / "config.json").write_text("{")


def test_runs_lists_every_workdir_sorted_with_its_status(tmp_path):
  _tree(tmp_path)
  lines = list_runs.table(str(tmp_path))
  assert lines[0].split() == ["path", "name", "seeds", "status", "best", "val", "test",
                              "wall", "time"]
  rows = {l.split()[0]: l for l in lines[1:]}
  assert list(rows) == ["a_stopped", "b_finished", "bad", "c_empty", "d_damaged",
                        "e_running", "f_dead", "sweep/p=1", "sweep/p=1/seed0"]
  assert "report_b/b1" in rows["b_finished"] and " finished " in rows["b_finished"]
  assert "80.00%" in rows["b_finished"] and "98.12%" in rows["b_finished"]
  assert rows["b_finished"].endswith("2 min 05 s")
  assert "stopped at epoch 2" in rows["a_stopped"] and rows["a_stopped"].endswith("20 s")
  assert " - " in rows["a_stopped"]  # no test accuracy yet
  assert "0-2" in rows["sweep/p=1"] and "91.00%" in rows["sweep/p=1"]  # mean of seeds' best
  assert rows["sweep/p=1"].endswith("1 h 06 min")
  assert " empty" in rows["c_empty"]
  assert "failed: damaged results.json" in rows["d_damaged"]
  assert "failed: damaged config.json" in rows["bad"]
  assert "running (epoch 1)" in rows["e_running"]
  assert "stopped at epoch 1" in rows["f_dead"]


def test_runs_command_and_launch_sh(tmp_path):
  _tree(tmp_path)
  r = subprocess.run(["./launch.sh", "runs", str(tmp_path)], cwd=ROOT, capture_output=True,
                     text=True, timeout=600)
  assert r.returncode == 0, r.stderr
  assert r.stdout.splitlines() == list_runs.table(str(tmp_path))
  r = subprocess.run([sys.executable, "-m", "experiments.list_runs", str(tmp_path / "notes")],
                     cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0 and r.stdout.startswith("No runs under")
  r = subprocess.run([sys.executable, "-m", "experiments.list_runs", str(tmp_path / "nope")],
                     cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2 and "is not a folder" in r.stderr


def test_launch_help_prints_the_usage_lines_only_and_sets_nothing_up(tmp_path):
  venv = tmp_path / "venv"
  r = subprocess.run(["./launch.sh", "--help"], cwd=ROOT, capture_output=True, text=True,
                     env=dict(os.environ, DIGITJAX_VENV=str(venv)), timeout=60)
  assert r.returncode == 0 and r.stderr == "" and not venv.exists()
  lines = r.stdout.splitlines()
  assert lines[0].startswith("The thin shell front of digitjax")
  assert any(l.strip().startswith("./launch.sh runs [DIR]") for l in lines)
  assert any(l.strip().startswith("./launch.sh reproduce") for l in lines)
  assert not any(l.startswith(("set ", "cd ", "#")) or "usage()" in l for l in lines)
  script = (ROOT / "launch.sh").read_text()
  assert "  runs) shift; exec" in script and "  reproduce) shift; exec" in script
