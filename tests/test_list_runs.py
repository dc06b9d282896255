"""experiments.list_runs lists every workdir under a folder; launch.sh's runs, reproduce, --help."""
import json
import os
import re
import socket
import subprocess
import sys

from conftest import ROOT
from experiments import list_runs


def _workdir(path, name, seed=0, num_seeds=1, epochs=0, results=None, lock=None):
  path.mkdir(parents=True)
  (path / "config.json").write_text(json.dumps(dict(name=name, seed=seed,
                                                    num_seeds=num_seeds, num_epochs=10)))
  lines = [json.dumps(dict(epoch=e, seed=s, time=10.0, val_accuracy=0.5 + 0.1 * e + 0.01 * s,
                           val_loss=1.0 / e))
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
           results=dict(per_seed=[dict(seed=s, best_epoch=4, epochs_run=4,
                                       val_accuracy=0.9 + 0.01 * s) for s in range(3)],
                        val_accuracy=0.91, test_accuracy=0.97, wall_seconds=4000.0))
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
  assert lines[0].split() == ["path", "name", "seeds", "status", "epochs", "val", "@best",
                              "test", "started", "wall", "time", "overrides"]
  rows = {l.split()[0]: l for l in lines[1:]}
  assert list(rows) == ["a_stopped", "b_finished", "bad", "c_empty", "d_damaged",
                        "e_running", "f_dead", "sweep/p=1", "sweep/p=1/seed0"]
  assert "report_b/b1" in rows["b_finished"] and " finished " in rows["b_finished"]
  assert " 3/10 " in rows["b_finished"] and "98.12%" in rows["b_finished"]
  assert "2 min 05 s" in rows["b_finished"]
  assert " stopped " in rows["a_stopped"] and " 2/10 " in rows["a_stopped"]
  assert "70.00% @2" in rows["a_stopped"] and " 20 s " in rows["a_stopped"]
  assert " - " in rows["a_stopped"]  # no test accuracy yet
  assert "0-2" in rows["sweep/p=1"] and "91.00% @4" in rows["sweep/p=1"]  # mean of seeds
  assert "1 h 06 min" in rows["sweep/p=1"]
  assert " empty" in rows["c_empty"]
  assert "failed: damaged results.json" in rows["d_damaged"]
  assert "failed: damaged config.json" in rows["bad"]
  assert " running " in rows["e_running"] and " 1/10 " in rows["e_running"]
  assert " stopped " in rows["f_dead"]


def _write(path, config, records=(), results=None, tb=()):
  path.mkdir(parents=True)
  (path / "config.json").write_text(json.dumps(config))
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  if results is not None:
    (path / "results.json").write_text(json.dumps(results))
  if tb:
    (path / "tb").mkdir()
    for stamp in tb:
      (path / "tb" / f"events.out.tfevents.{stamp}.host").write_text("")


# val_loss is best at epoch 2 (the checkpoint kept and tested); val accuracy peaks at 3
HISTORY = [dict(epoch=1, seed=0, time=5.0, val_loss=0.60, val_accuracy=0.800),
           dict(epoch=2, seed=0, time=5.0, val_loss=0.50, val_accuracy=0.826),
           dict(epoch=3, seed=0, time=5.0, val_loss=0.55, val_accuracy=0.832)]


def test_val_is_the_monitored_best_epochs_as_results_json_records_it(tmp_path):
  """The index once showed the highest val accuracy of any epoch (83.20%) where
  results.json recorded the best val_loss epoch's (82.60%)."""
  config = dict(name="b", monitor="val_loss", num_epochs=3)
  _write(tmp_path / "done", config, HISTORY, results=dict(
      per_seed=[dict(seed=0, best_epoch=2, epochs_run=3, val_accuracy=0.826)],
      val_accuracy=0.826, test_accuracy=0.81, wall_seconds=20.0))
  _write(tmp_path / "half", config, HISTORY)  # unfinished: read from metrics.jsonl
  _write(tmp_path / "acc", dict(config, monitor="val_accuracy"), HISTORY)
  rows = {l.split()[0]: l for l in list_runs.table(str(tmp_path))[1:]}
  assert "82.60% @2" in rows["done"] and "83.20%" not in rows["done"]
  assert "82.60% @2" in rows["half"] and " stopped " in rows["half"]
  assert "83.20% @3" in rows["acc"]
  # no validation (records and results without val): no figure, no traceback
  _write(tmp_path / "noval", dict(config, name="n"),
         [dict(epoch=1, seed=0, time=1.0, loss=0.3)],
         results=dict(per_seed=[dict(seed=0, best_epoch=None, epochs_run=1)],
                      val_accuracy=None, test_accuracy=0.9))
  _write(tmp_path / "noval2", dict(config, name="n"), [dict(epoch=1, seed=0, loss=0.3)])
  d = list_runs.describe(str(tmp_path / "noval2"))
  assert d["val_accuracy"] is None and d["best_epoch"] == [] and d["status"] == "stopped"
  cells = {l.split()[0]: re.split(r"\s{2,}", l) for l in list_runs.table(str(tmp_path))[1:]}
  assert cells["noval"][3:7] == ["finished", "1/3", "-", "90.00%"]


def test_the_unfinished_best_epoch_follows_the_training_loops_rule():
  """Early stopping with min_delta: an epoch better by less than min_delta is not the
  best (digitjax.callbacks.track_best); list_runs reads metrics.jsonl the same way."""
  from ml_collections import ConfigDict
  from digitjax import callbacks

  values = [0.50, 0.60, 0.605, 0.70, 0.709, 0.68]
  records = [dict(epoch=e, seed=0, val_accuracy=v) for e, v in enumerate(values, 1)]
  for es in (dict(enabled=True, min_delta=0.01, patience=99),
             dict(enabled=False, min_delta=0.01, patience=99)):
    loop = callbacks.LoopState.fresh(1)
    for r in records:
      callbacks.track_best(loop, 0, r["epoch"], r["val_accuracy"], "val_accuracy",
                           ConfigDict(es))
    config = dict(monitor="val_accuracy", early_stopping=es)
    assert list_runs.best_records(records, config)[0]["epoch"] == loop.best_epoch[0]
  assert loop.best_epoch[0] == 5  # without early stopping: the best value


def test_sweep_points_old_runs_overrides_started_and_json(tmp_path):
  point = "model.hidden_units=64x32,optimizer.learning_rate=0.001"
  config = dict(name="default", seed=1, num_epochs=2, batch_size=32,
                model=dict(name="mlp", hidden_units=[64, 32], dropout=0.0),
                optimizer=dict(name="rmsprop", learning_rate=0.001),
                early_stopping=dict(enabled=True, patience=7),
                provenance=dict(date="2026-01-02T03:04:05+00:00"))
  _write(tmp_path / "sweeps" / "s" / point / "seed1", config, HISTORY[:2], tb=[1767323045])
  _write(tmp_path / "bn", dict(name="bn", provenance=config["provenance"]), HISTORY[:1])
  _write(tmp_path / "bn.old-20260101-000000", dict(name="bn"), HISTORY[:1])
  lines = list_runs.table(str(tmp_path))
  rows = {l.split()[0]: l for l in lines[1:]}
  assert list(rows) == ["bn", f"sweeps/s/{point}/seed1"]  # the set-aside run hidden
  sweep = rows[f"sweeps/s/{point}/seed1"]
  assert " hidden_units=64x32 learning_rate=0.001 " in sweep and "default" not in sweep
  assert "2026-01-02 03:04" in rows["bn"]  # no tb/: config.json's provenance date
  assert "2026-01-02 03:04" in sweep  # its first tb event file (a resume rewrote the date)
  assert sweep.endswith("  model.name=mlp early_stopping.enabled=True "
                        "early_stopping.patience=7 batch_size=32")
  everything = list_runs.table(str(tmp_path), include_old=True)
  assert any(l.startswith("bn.old-20260101-000000 ") for l in everything)
  narrow = list_runs.table(str(tmp_path), width=len(lines[0]) - 5)
  assert narrow[2].endswith("…") and len(narrow[2]) <= len(lines[0]) - 5 + 12
  r = subprocess.run([sys.executable, "-m", "experiments.list_runs", str(tmp_path), "--json",
                      "--all"], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  runs = json.loads(r.stdout)
  assert [os.path.relpath(d["path"], tmp_path) for d in runs] == [
      "bn", "bn.old-20260101-000000", f"sweeps/s/{point}/seed1"]
  d = runs[2]
  assert d["sweep_point"] == {"model.hidden_units": "64x32", "optimizer.learning_rate": "0.001"}
  assert d["overrides"] == {"model.name": "mlp", "batch_size": 32, "early_stopping.enabled": True,
                            "early_stopping.patience": 7}
  assert (d["epochs"], d["num_epochs"], d["best_epoch"], d["seeds"]) == (2, 2, [2], "1")
  assert d["val_accuracy"] == 0.826 and d["started"] == "2026-01-02T03:04:05+00:00"
  r = subprocess.run([sys.executable, "-m", "experiments.list_runs", "--jsn"], cwd=ROOT,
                     capture_output=True, text=True)
  assert r.returncode == 2 and "unrecognized arguments: --jsn" in r.stderr
  assert "Traceback" not in r.stderr


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
