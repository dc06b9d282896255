"""Issue #21 families 14-15: resources beyond memory are refused before anything is written;
eval only reads (a read-only archive, a training writing the same workdir meanwhile)."""
import os
import shutil

import pytest

from conftest import MOCK_TINY, mock_cli, mock_data, tiny_config
from digitjax import checkpoints, main, fingerprint, trainer as trainer_lib


def _one_error_line(r, *words):
  assert r.returncode == 2, r.stderr
  assert "Traceback" not in r.stderr and "Epoch" not in r.stdout
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and all(w in last for w in words), r.stderr


def test_an_eval_batch_beyond_memory_is_refused_before_training(tmp_path):
  """Before: a MemoryError traceback after the first epoch's training."""
  workdir = tmp_path / "run"
  r = mock_cli(tmp_path, *MOCK_TINY, "--config.eval_batch_size=1000000000000",
               f"--workdir={workdir}")
  _one_error_line(r, "eval_batch_size=1000000000000", "ran out of memory",
                  "lower --config.eval_batch_size")
  assert not (workdir / "config.json").exists()  # the corrected command is not refused


def test_num_seeds_beyond_memory_is_refused_before_compiling(tmp_path):
  """Before: minutes of compilation with no word, then a failure."""
  workdir = tmp_path / "run"
  r = mock_cli(tmp_path, *MOCK_TINY, "--config.num_seeds=10000000", f"--workdir={workdir}",
               timeout=120)
  _one_error_line(r, "num_seeds=10000000", "lower --config.num_seeds")
  assert not workdir.exists()


def _snapshot(root):
  return {os.path.relpath(os.path.join(d, f), root): os.stat(os.path.join(d, f)).st_mtime_ns
          for d, dirs, files in os.walk(root) for f in files + dirs}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny finished run on mock data (3 epochs: several latest and best saves)."""
  root = tmp_path_factory.mktemp("trained")
  with mock_data(tmp_path_factory.mktemp("empty_tfds")):  # never cached as real MNIST
    c = tiny_config(num_epochs=3, batch_size=50)
    results = main.run(c, str(root / "w"))
  return c, root / "w", results


def test_eval_prints_its_figures_and_writes_nothing(trained, tmp_path, capsys):
  """A run on a read-only archive: eval used to compute the figures, then fail writing
  a plot (and print nothing). Now it writes nothing at all, whatever the permissions."""
  c, workdir, results = trained
  archive = tmp_path / "archive"
  shutil.copytree(workdir, archive)
  before = _snapshot(archive)
  with mock_data(tmp_path / "empty_tfds"):
    again = main.run(c, str(archive), mode="eval")
  assert again["test_accuracy"] == results["test_accuracy"]
  assert "Test (best checkpoint" in capsys.readouterr().out
  assert _snapshot(archive) == before


def test_eval_passes_over_a_checkpoint_a_training_deletes_under_it(trained, tmp_path,
                                                                   capsys):
  """A training's retention deletes the step eval is reading: eval used to crash with a
  FileNotFoundError while moving it aside. A reader moves nothing: it warns, takes the
  next step, and the folder is as the training left it."""
  c, workdir, _ = trained
  copy = tmp_path / "w"
  shutil.copytree(workdir, copy)
  ckpts = checkpoints.Checkpoints(str(copy), read_only=True)
  steps = sorted(ckpts.latest.all_steps())
  assert len(steps) == 2
  real_restore = ckpts.latest.restore

  def restore_after_retention(step, *args, **kwargs):
    if step == steps[-1]:  # the training deletes it just as eval reads it
      shutil.rmtree(os.path.join(ckpts.latest.directory, str(step)), ignore_errors=True)
    return real_restore(step, *args, **kwargs)

  ckpts.latest.restore = restore_after_retention
  trainer = trainer_lib.Trainer(c, steps_per_epoch=1)
  state, meta = ckpts.restore_latest(trainer.abstract_state(), fingerprint.checkpoint_check(c))
  assert int(state.step.max()) == steps[0]
  err = capsys.readouterr().err
  assert "removed while being read" in err and "Traceback" not in err
  assert not (copy / "checkpoints" / "unreadable").exists()
  assert sorted(os.listdir(copy / "checkpoints" / "latest")) == [str(steps[0])]
