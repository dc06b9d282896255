"""--mode=summary: the variants, resolved config, model and workdir, with nothing trained,
read or written (digitjax.overview)."""
import os
import subprocess
import sys

from conftest import ROOT, tiny_config


def _summary(tmp_path, *args):
  """digitjax.main --mode=summary run from an empty folder (relative workdirs land there),
  with the checkout's digitjax and an empty TFDS data dir: no data can be read."""
  (tmp_path / "no_data").mkdir(exist_ok=True)
  env = dict(os.environ, PYTHONPATH=str(ROOT), TFDS_DATA_DIR=str(tmp_path / "no_data"))
  (tmp_path / "cwd").mkdir(exist_ok=True)
  return subprocess.run([sys.executable, "-m", "digitjax.main", "--mode=summary", *args],
                        cwd=tmp_path / "cwd", env=env, capture_output=True, text=True,
                        timeout=300)


def test_summary_shows_variants_config_model_and_workdir_and_writes_nothing(tmp_path):
  r = _summary(tmp_path, f"--config={ROOT}/configs/report_a.py:a2_mlp1",
               "--config.optimizer.name=adam")
  assert r.returncode == 0, r.stderr
  out = r.stdout
  assert "a1_perceptron, a2_mlp1 (this one), a3_mlp2, a4_mlp_dropout, a5_l2" in out
  assert "default a1_perceptron" in out
  assert "name: adam" in out and "name: report_a/a2_mlp1" in out  # the override applied
  assert 'Model: "mlp"' in out and "01_dense    (None, 128)       100,480" in out
  assert "Parameters: 101,770 (101,770 trainable, 0 non-trainable); input 28x28x1" in out
  assert "Workdir runs/report_a/a2_mlp1: does not exist yet: training creates it." in out
  assert os.listdir(tmp_path / "cwd") == [] and os.listdir(tmp_path / "no_data") == []


def test_summary_tells_what_training_would_do_with_an_existing_workdir(tmp_path):
  c = tiny_config()
  (tmp_path / "w").mkdir()
  (tmp_path / "w" / "config.json").write_text(c.to_json_best_effort())
  before = sorted(os.listdir(tmp_path / "w"))
  r = _summary(tmp_path, f"--config={ROOT}/tests/tiny_config.py", f"--workdir={tmp_path / 'w'}")
  assert r.returncode == 0, r.stderr
  assert "holds a run of this config that saved no checkpoint yet" in r.stdout
  assert "Variants" not in r.stdout  # tiny_config.py has none
  r = _summary(tmp_path, f"--config={ROOT}/tests/tiny_config.py", "--config.seed=4",
               f"--workdir={tmp_path / 'w'}")
  assert r.returncode == 0, r.stderr
  assert "training would refuse it: workdir" in r.stdout and "seed: 0 -> 4" in r.stdout
  r = _summary(tmp_path, f"--workdir={tmp_path / 'w'}")  # the config the workdir recorded
  assert r.returncode == 0 and "name: tiny" in r.stdout, r.stderr
  assert sorted(os.listdir(tmp_path / "w")) == before


def test_a_wrong_variant_or_override_is_one_line_listing_what_exists(tmp_path):
  for args, message in (
      ([f"--config={ROOT}/configs/report_a.py:a9"],
       "has no variant 'a9'; it has a1_perceptron, a2_mlp1, a3_mlp2, a4_mlp_dropout, a5_l2"),
      ([f"--config={ROOT}/configs/report_a.py", "--config.num_epochs=0"],
       "num_epochs=0 is out of range")):
    r = _summary(tmp_path, *args)
    assert r.returncode == 2 and r.stderr.count("error:") == 1, r.stderr  # one per line
    assert message in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
  assert os.listdir(tmp_path / "cwd") == []
