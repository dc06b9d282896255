"""Sweeps: grid x seeds, resumable, aggregated into mean ± std tables and a plot."""
import glob
import os
import subprocess

import pytest

from conftest import ROOT, needs_mnist
from digitjax import config as config_lib
from experiments import sweep as sweep_lib

SWEEP = '''
import sys
sys.path.insert(0, {tests!r})
import tiny_config
def get_sweep():
  c = tiny_config.get_config()
  return dict(name="tiny", base=c, seeds=2, metric="test_accuracy", vmap_seeds=True,
              axes={{"model.hidden_units": [(8,), (32,)], "optimizer.name": ["sgd", "adam"]}})
'''


@needs_mnist
def test_sweep_runs_every_point_aggregates_and_resumes(tmp_path, capsys):
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
  configs = sweep_lib.point_configs(sweep, setting, {})
  if sweep["vmap_seeds"]:
    assert len(configs) == 1 and configs[0][1].num_seeds == 3
  else:
    assert [(sub, c.seed, c.num_seeds) for sub, c in configs] == [
        ("seed0", 0, 1), ("seed1", 1, 1), ("seed2", 2, 1)]


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "experiments/sweeps/*.py"))))
def test_shipped_sweeps_define_valid_points(path):
  sweep = sweep_lib.load_sweep(path)
  grid = list(sweep_lib.points(sweep))
  assert len(grid) >= 2 and sweep["seeds"] >= 3
  for _, setting in grid:
    for _, config in sweep_lib.point_configs(sweep, setting, {}):
      assert config_lib.validate(config) == []


def test_sweep_with_unknown_axis_is_a_clear_error(tmp_path):
  path = tmp_path / "bad.py"
  path.write_text("from digitjax import config as base\n"
                  "def get_sweep():\n"
                  "  return dict(name='bad', base=base.get_config(), seeds=3,\n"
                  "              axes={'model.widht': [1, 2]})\n")
  r = subprocess.run([os.sys.executable, "-m", "experiments.sweep", str(path), "--root",
                      str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2 and "model.widht" in r.stderr and "Traceback" not in r.stderr


def test_slurm_script_is_written(tmp_path):
  r = subprocess.run(["./launch.sh", "--slurm", "--nodes", "2", "--gpus-per-node", "4",
                      "configs/cnn_bn.py", "--config.seed=3"], cwd=ROOT, capture_output=True,
                     text=True, timeout=600)
  assert r.returncode == 0, r.stderr
  script = (ROOT / "runs/slurm/cnn_bn.sbatch").read_text()
  assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=4" in script
  assert "DIGITJAX_DISTRIBUTED=auto" in script
  assert "srun" in script and "--config=configs/cnn_bn.py --config.seed=3" in script


@pytest.mark.parametrize("args,message", [
    (["--slurm", "--nodes", "two", "configs/report_c.py"], "--nodes needs a positive whole"),
    (["--slurm", "configs/report_c.py", "--nodes", "2"], "--nodes is a --slurm option: put"),
    (["--slurm", "configs/report_c.py", "--config.num_epochs=0"], "num_epochs=0 is out of"),
    (["--slurm", "configs/report_c.py", "--config.modle.name=x"], "no field 'modle'"),
    (["--slurm", "--time"], "--time needs [D-]HH:MM:SS"),
    (["--processes", "x", "configs/report_c.py"], "--processes needs a positive whole"),
    (["--processes", "2", "configs/report_c.py", "--config.seed=one"], "--config.seed=one"),
])
def test_launch_checks_a_cluster_command_line_before_queueing_it(args, message):
  """Mistakes show at once, before a SLURM queue or N processes: one message, exit 2."""
  script = ROOT / "runs/slurm/report_c.sbatch"
  script.unlink(missing_ok=True)
  r = subprocess.run(["./launch.sh", *args], cwd=ROOT, capture_output=True, text=True,
                     timeout=600)
  assert r.returncode == 2 and message in r.stderr, r.stderr
  assert r.stderr.count("error:") == 1, r.stderr  # once, not once per process
  assert "Traceback" not in r.stderr and "unbound variable" not in r.stderr
  assert r.stdout == "" and not script.exists()


def test_a_point_finished_in_the_other_seed_layout_is_not_trained_again(tmp_path, monkeypatch):
  """A GPU vmaps a point's seeds (one results.json), a CPU runs seed<k>/ one by one: a
  sweep resumed on the other machine reads the finished point instead of retraining."""
  import json
  from digitjax import main

  monkeypatch.setattr(main, "run", lambda *a, **k: pytest.fail("trained a finished point"))
  config = config_lib.get_config()
  config.num_seeds = 2
  per_seed = [dict(seed=0, test_accuracy=0.9), dict(seed=1, test_accuracy=0.8)]
  (tmp_path / "vmapped").mkdir()
  (tmp_path / "vmapped" / "results.json").write_text(json.dumps(dict(per_seed=per_seed)))
  singles = [(f"seed{k}", config) for k in range(2)]
  assert sweep_lib.run_point(singles, str(tmp_path / "vmapped")) == per_seed
  for k in range(2):
    (tmp_path / "alone" / f"seed{k}").mkdir(parents=True)
    (tmp_path / "alone" / f"seed{k}" / "results.json").write_text(json.dumps(per_seed[k]))
  assert sweep_lib.run_point([(None, config)], str(tmp_path / "alone")) == per_seed
