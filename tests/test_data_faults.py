"""Damaged datasets are one message naming the dataset, the file and what to do, before
any training (issue #21, family 13): each case damages a copy of MNIST on disk."""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, needs_mnist, tiny_config
from digitjax import data
from digitjax.errors import UserError
from digitjax import npz_source


@pytest.fixture
def mnist_copy(tmp_path, monkeypatch):
  """A writable copy of the prepared MNIST, as TFDS_DATA_DIR; returns its version dir."""
  src = pathlib.Path(os.environ["TFDS_DATA_DIR"]) / "mnist"
  shutil.copytree(src, tmp_path / "tfds" / "mnist")
  for f in (tmp_path / "tfds").rglob("*"):
    f.chmod(0o755 if f.is_dir() else 0o644)
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  return next((tmp_path / "tfds" / "mnist").iterdir())


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _flip_bytes(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    chunk = bytearray(f.read(64))
    f.seek(os.path.getsize(path) // 2)
    f.write(bytes(b ^ 0xFF for b in chunk))


DAMAGE = {
    "truncated train shard": ("train", _truncate, "cannot be read"),
    "truncated test shard": ("test", _truncate, "cannot be read"),
    "corrupted test shard": ("test", _flip_bytes, "cannot be read"),
    "missing test shard": ("test", os.remove, "is missing"),
}


@needs_mnist
@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_shard_is_named_before_training(mnist_copy, case):
  split, damage, reason = DAMAGE[case]
  shard = next(mnist_copy.glob(f"mnist-{split}.tfrecord*"))
  damage(shard)
  with pytest.raises(UserError, match=f"dataset 'mnist' is damaged: .*{shard}.*{reason}.*"
                                      "Prepare it again"):
    data.load_train_val(tiny_config())  # the test split too: it is read after training


@needs_mnist
def test_damaged_dataset_info_is_named_and_not_pending(mnist_copy):
  (mnist_copy / "dataset_info.json").write_text('{"name": "mni')
  config = tiny_config()
  assert data.is_prepared(config)  # prepared but damaged: not "pending data"
  with pytest.raises(UserError, match="damaged: TFDS cannot open .*dataset_info.json"):
    data.load_train_val(config)


@needs_mnist
def test_cli_reports_a_damaged_test_shard_in_one_line_before_any_epoch(mnist_copy, tmp_path):
  _truncate(next(mnist_copy.glob("mnist-test.tfrecord*")))
  proc = subprocess.run(
      [sys.executable, "-m", "digitjax.main", f"--config={ROOT / 'tests' / 'tiny_config.py'}",
       f"--workdir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=ROOT,
      env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}, timeout=300)
  assert proc.returncode == 2, proc.stderr
  assert "Traceback" not in proc.stderr and "Epoch" not in proc.stdout
  (line,) = proc.stderr.splitlines()  # no TensorFlow C++ log line before it
  assert line.startswith("error: dataset 'mnist' is damaged")


def test_truncated_npz_export_is_one_message(tmp_path):
  (tmp_path / "mnist").mkdir()
  np.savez_compressed(tmp_path / "mnist" / "train.npz",
                      images=np.zeros((100, 28, 28, 1), np.uint8), labels=np.zeros(100, np.int32))
  _truncate(tmp_path / "mnist" / "train.npz")
  with pytest.raises(UserError, match="train.npz is damaged .*export it again"):
    npz_source.read(str(tmp_path), tiny_config(), "train")
