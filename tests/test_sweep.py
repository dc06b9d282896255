"""Sweeps: grid x seeds, resumable, aggregated into mean ± std tables and a plot."""
import glob
import os
import subprocess

import pytest

from conftest import ROOT, with_overrides
from digitjax import config as config_lib
from digitjax import validation
from experiments.sweep import run as sweep_lib
from experiments.sweep import summary as sweep_summary

SWEEP = '''
import sys
sys.path.insert(0, {tests!r})
import tiny_config
def get_sweep():
  c = tiny_config.get_config()
  return dict(name="tiny", base=c, seeds=2, metric="test_accuracy", vmap_seeds=True,
              axes={{"model.hidden_units": [(8,), (32,)], "optimizer.name": ["sgd", "adam"]}})
'''


def test_sweep_runs_every_point_aggregates_and_resumes(tmp_path, capsys, no_prepared_data):
  # no prepared data: --quick runs each point on mock data (runner.quick_data)
  path = tmp_path / "tiny_sweep.py"
  path.write_text(SWEEP.format(tests=str(ROOT / "tests")))
  folder = sweep_lib.run_sweep(str(path), root=str(tmp_path / "runs"), quick=True)
  table = open(os.path.join(folder, "summary.md")).read()
  rows = [l for l in table.splitlines() if l.startswith("| ") and "±" in l]
  assert len(rows) == 4 and all(l.rstrip().endswith("| 2 |") for l in rows)
  assert os.path.exists(os.path.join(folder, "test_accuracy.png"))
  csv_lines = open(os.path.join(folder, "summary.csv")).read().splitlines()
  assert csv_lines[0].startswith("model.hidden_units,optimizer.name,test_accuracy_mean,test_accuracy_std,n")
  assert len(csv_lines) == 5
  capsys.readouterr()
  sweep_lib.run_sweep(str(path), root=str(tmp_path / "runs"), quick=True)  # resumes
  out = capsys.readouterr().out
  assert out.count("done, skipped") == 4
  assert open(os.path.join(folder, "summary.md")).read() == table


def test_seeds_vmap_by_default_only_off_cpu(tmp_path):
  import jax
  path = tmp_path / "plain.py"
  path.write_text("from digitjax import config as base\n"
                  "def get_sweep():\n"
                  "  return dict(name='plain', base=base.get_config(), seeds=3,\n"
                  "              axes={'batch_size': [128]})\n")
  sweep = sweep_lib.load_sweep(str(path))
  assert sweep["vmap_seeds"] == (jax.default_backend() != "cpu")
  (_, setting), = sweep_lib.points(sweep)
  assert sweep_lib.point_config(sweep, setting).batch_size == 128


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "experiments/sweep/specs/*.py"))))
def test_shipped_sweeps_define_valid_points(path):
  sweep = sweep_lib.load_sweep(path)
  grid = list(sweep_lib.points(sweep))
  assert len(grid) >= 2 and sweep["seeds"] >= 3
  for _, setting in grid:
    assert validation.validate(sweep_lib.point_config(sweep, setting)) == []


def test_sweep_with_unknown_axis_is_a_clear_error(tmp_path):
  path = tmp_path / "bad.py"
  path.write_text("from digitjax import config as base\n"
                  "def get_sweep():\n"
                  "  return dict(name='bad', base=base.get_config(), seeds=3,\n"
                  "              axes={'model.widht': [1, 2]})\n")
  r = subprocess.run([os.sys.executable, "-m", "experiments.sweep", str(path), "--root",
                      str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2 and "model.widht" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("extra,axes,message", [
    ("metirc='val_loss', ", "{'model.dropout': [0.0, 0.5]}", "unknown key 'metirc' (did you mean 'metric'?)"),
    ("seed=4, ", "{'model.dropout': [0.0, 0.5]}", "unknown key 'seed' (did you mean 'seeds'?)"),
    ("", "{'seed': [0, 1]}", "axis 'seed' is set by the sweep itself"),
    ("", "{'model.dropout': [0.0, 1.5]}", "point model.dropout=1.5: config.model.dropout=1.5"),
])
def test_a_sweep_file_is_checked_whole_before_any_point_trains(extra, axes, message, tmp_path):
  path = tmp_path / "bad.py"
  path.write_text("from digitjax import config as base\n"
                  "def get_sweep():\n"
                  f"  return dict(name='bad', base=base.get_config(), seeds=1, {extra}\n"
                  f"              axes={axes})\n")
  r = subprocess.run([os.sys.executable, "-m", "experiments.sweep", str(path), "--root",
                      str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2 and r.stderr.count("error:") == 1, r.stderr
  assert message in r.stderr and "Traceback" not in r.stderr
  assert r.stdout == "" and not (tmp_path / "runs").exists()  # nothing trained or written


def test_a_point_without_a_validation_set_is_refused_before_any_trains():
  """A sweep picks its best point on val: a point with nothing held back would be scored
  on nothing (its row blank, the pick silently made among the others)."""
  from digitjax.errors import UserError

  sweep = dict(name="noval", base=config_lib.get_config(), seeds=1, metric="test_accuracy",
               axes={"dataset.validation_fraction": [0.1, 0.0]}, vmap_seeds=False)
  with pytest.raises(UserError, match=r"point dataset.validation_fraction=0[.0]*: dataset."
                     r"validation_fraction=0 holds no validation set.*on val_accuracy"):
    sweep_lib.point_configs(sweep)


def test_slurm_script_is_written(tmp_path):
  out = tmp_path / "jobs" / "bn.sbatch"
  r = subprocess.run(["./launch.sh", "--slurm", "--nodes", "2", "--gpus-per-node", "4",
                      "--out", str(out), "configs/cnn_bn.py", "--config.seed=3"], cwd=ROOT,
                     capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr
  assert r.stdout == f"Wrote {out}\n"
  script = out.read_text()
  assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=4" in script
  assert "DIGITJAX_DISTRIBUTED=auto" in script
  assert "srun" in script and "--config=configs/cnn_bn.py --config.seed=3" in script


@pytest.mark.parametrize("args,message", [
    (["--slurm", "--nodes", "two", "configs/report_c.py"], "--nodes needs a positive whole"),
    (["--slurm", "configs/report_c.py", "--nodes", "2"], "--nodes is a --slurm option: put"),
    (["--slurm", "configs/report_c.py", "--config.num_epochs=0"], "num_epochs=0 is out of"),
    (["--slurm", "configs/report_c.py", "--config.modle.name=x"], "no field 'modle'"),
    (["--slurm", "--time"], "--time needs [D-]HH:MM:SS"),
    (["--slurm", "--out"], "--out needs a file name"),
    (["--slurm", "configs/report_c.py", "--out", "x.sbatch"], "--out is a --slurm option"),
    (["--processes", "x", "configs/report_c.py"], "--processes needs a positive whole"),
    (["--processes", "2", "configs/report_c.py", "--config.seed=one"], "--config.seed=one"),
])
def test_launch_checks_a_cluster_command_line_before_queueing_it(args, message, tmp_path):
  """Mistakes show at once, before a SLURM queue or N processes: one message, exit 2."""
  script = tmp_path / "report_c.sbatch"
  if args[0] == "--slurm" and "--out" not in args:
    args = ["--slurm", "--out", str(script), *args[1:]]
  r = subprocess.run(["./launch.sh", *args], cwd=ROOT, capture_output=True, text=True,
                     timeout=600)
  assert r.returncode == 2 and message in r.stderr, r.stderr
  assert r.stderr.count("error:") == 1, r.stderr  # once, not once per process
  assert "Traceback" not in r.stderr and "unbound variable" not in r.stderr
  assert r.stdout == "" and not script.exists()


def _finish(workdir, config, per_seed):
  """What a finished run leaves for the sweep: config.json (as training writes it) and
  results.json (per_seed and the aggregate, as every run writes it)."""
  import json
  from digitjax import seed_stats, workdir as workdir_lib

  workdir_lib.create(str(workdir))
  workdir_lib.record_config(config, str(workdir))
  body = dict(seed_stats.combine_seeds(per_seed), wall_seconds=1.0)
  (workdir / "results.json").write_text(json.dumps(body))


def _point(vmap, **base):
  """(sweep, config) of a one-point sweep of 2 seeds, seeds vmapped or one by one."""
  config = with_overrides(config_lib.get_config(), **base)
  sweep = dict(base=config, axes={"model.dropout": [0.1]}, seeds=2, vmap_seeds=vmap)
  return sweep, sweep_lib.point_config(sweep, {"model.dropout": 0.1})


def _finish_alone(folder, config):
  """Seeds 0 and 1 of config finished one by one, in folder/seed<k>."""
  for seed in (0, 1):
    single = config.copy_and_resolve_references()
    single.seed, single.num_seeds = seed, 1
    _finish(folder / f"seed{seed}", single, [PER_SEED[seed]])


def _fake_run(ran):
  """main.run's stand-in: records the workdir and 'trains' the config's seeds."""
  def run(c, wd):
    ran.append(wd)
    return dict(_results_of(c), wall_seconds=1.0)
  return run


def _results_of(c):
  from digitjax import seed_stats
  return seed_stats.combine_seeds([PER_SEED[s] for s in range(c.seed, c.seed + c.num_seeds)])


PER_SEED = [dict(seed=0, test_accuracy=0.9, epochs_run=30),
            dict(seed=1, test_accuracy=0.8, epochs_run=30)]


def test_a_point_finished_in_the_other_seed_layout_is_not_trained_again(tmp_path, monkeypatch):
  """A GPU vmaps a point's seeds (seeds0-1/), a CPU runs seed<k>/ one by one: a sweep
  resumed on the other machine reads the finished point instead of retraining."""
  from digitjax import main

  monkeypatch.setattr(main, "run", lambda *a, **k: pytest.fail("trained a finished point"))
  sweep, config = _point(vmap=True)
  together = config.copy_and_resolve_references()
  together.num_seeds = 2
  _finish(tmp_path / "vmapped" / "seeds0-1", together, PER_SEED)
  assert sweep_lib.run_point(_point(vmap=False)[0], config, str(tmp_path / "vmapped")) == PER_SEED
  _finish_alone(tmp_path / "alone", config)
  assert sweep_lib.run_point(sweep, config, str(tmp_path / "alone")) == PER_SEED


def test_a_point_finished_under_another_config_is_refused_not_reused(tmp_path, monkeypatch):
  """The sweep file changed since the point ran (here its learning rate): reusing those
  results would put another experiment's numbers in the table."""
  from digitjax import main
  from digitjax.errors import UserError

  monkeypatch.setattr(main, "run", lambda *a, **k: pytest.fail("trained over a finished run"))
  _finish_alone(tmp_path, _point(vmap=False)[1])
  for vmap in (False, True):
    sweep, config = _point(vmap=vmap, **{"optimizer.learning_rate": 0.002})
    with pytest.raises(UserError, match=r"\(optimizer.learning_rate: None -> 0.002\)\. The sweep file changed"):
      sweep_lib.run_point(sweep, config, str(tmp_path))


def test_an_unreadable_results_file_is_run_again(tmp_path, monkeypatch):
  from digitjax import main

  ran = []
  monkeypatch.setattr(main, "run", _fake_run(ran))
  sweep, config = _point(vmap=False)
  _finish_alone(tmp_path, config)
  (tmp_path / "seed1" / "results.json").write_text('{"test_acc')  # cut short
  assert sweep_lib.run_point(sweep, config, str(tmp_path)) == PER_SEED
  assert ran == [str(tmp_path / "seed1")]


def test_a_point_asked_for_more_epochs_trains_on(tmp_path, monkeypatch):
  """num_epochs is not part of a run's identity (raise it to train longer): a finished
  point with fewer epochs than the sweep now asks for is resumed, not reused."""
  from digitjax import main

  ran = []
  monkeypatch.setattr(main, "run", _fake_run(ran))
  _finish_alone(tmp_path, _point(vmap=False)[1])
  sweep, config = _point(vmap=False, num_epochs=31)
  sweep_lib.run_point(sweep, config, str(tmp_path))
  assert ran == [str(tmp_path / "seed0"), str(tmp_path / "seed1")]


@pytest.mark.parametrize("module,argv,message", [
    ("sweep.run", ["experiments/sweep/specs/hidden_units.py", "--seeds", "0"],
     "argument --seeds: 0 is below the minimum, 1"),
    ("keras.check", ["--row", "A1", "--epochs", "-1"],
     "argument --epochs: -1 is below the minimum, 0"),
    ("keras.check", ["--row", "A1", "--limit", "x"], "argument --limit: 'x' is not a whole"),
    ("perf.bench", ["--steps", "-1"], "argument --steps: -1 is below the minimum, 0"),
    ("perf.bench", ["--dispatch", "0"], "argument --dispatch: 0 is below the minimum, 1"),
])
def test_experiment_commands_refuse_bad_counts_before_any_work(module, argv, message,
                                                               capsys):
  """Before: --seeds 0 ran the sweep's default seeds, --steps -1 crashed after a warm-up,
  a negative --limit trained on a slice from the end."""
  import importlib
  with pytest.raises(SystemExit) as exit_:
    importlib.import_module(f"experiments.{module}").main(argv)
  assert exit_.value.code == 2
  assert message in capsys.readouterr().err


def _rows(points):
  """Sweep rows as run_sweep builds them: {value: [(val_accuracy, test_accuracy), ...]}."""
  return [dict(name=f"model.dropout={v}", setting={"model.dropout": v},
               per_seed=[dict(seed=k, val_accuracy=va, test_accuracy=te)
                         for k, (va, te) in enumerate(seeds)])
          for v, seeds in points.items()]


def test_sweep_tables_report_val_and_test_with_intervals_and_pick_on_val(tmp_path):
  """The best point is the best mean val accuracy, even where another point tests higher;
  every figure carries its 95% t-interval."""
  sweep = dict(name="drop", metric="test_accuracy", seeds=3, axes={"model.dropout": [0.1, 0.5]})
  rows = _rows({0.1: [(0.90, 0.99), (0.91, 0.99), (0.92, 0.99)],   # tests higher
                0.5: [(0.95, 0.90), (0.96, 0.91), (0.97, 0.92)]})  # validates higher
  table = sweep_summary.aggregate(sweep, rows, str(tmp_path))
  import csv
  with open(tmp_path / "summary.csv") as f:
    out = list(csv.DictReader(f))
  assert [r["best_on_val_accuracy"] for r in out] == ["", "yes"]
  assert float(out[1]["val_accuracy_mean"]) == pytest.approx(0.96)
  # mean 0.91, std 0.01, 3 seeds: +- t(0.975, 2) * 0.01 / sqrt(3) = +-0.02484
  assert float(out[1]["test_accuracy_ci95_low"]) == pytest.approx(0.91 - 0.024841, abs=1e-5)
  assert float(out[1]["test_accuracy_ci95_high"]) == pytest.approx(0.91 + 0.024841, abs=1e-5)
  assert "Best on val_accuracy: model.dropout=0.5" in table
  assert "0.9100 ± 0.0100 [0.8852, 0.9348]" in table
  assert "| model.dropout | test_accuracy | val_accuracy | best on val_accuracy | n |" in table


def test_sweep_with_an_unknown_metric_is_refused_up_front(tmp_path):
  path = tmp_path / "bad_metric.py"
  path.write_text("from digitjax import config as base\n"
                  "def get_sweep():\n"
                  "  return dict(name='m', base=base.get_config(), metric='test_acc',\n"
                  "              axes={'model.dropout': [0.1, 0.2]})\n")
  r = subprocess.run([os.sys.executable, "-m", "experiments.sweep", str(path), "--root",
                      str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2 and "metric='test_acc'" in r.stderr, r.stderr
  assert "known: test_loss, test_accuracy" in r.stderr and "Traceback" not in r.stderr
  assert not (tmp_path / "m").exists()
