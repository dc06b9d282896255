"""The split cache of digitjax.data: a split read through TFDS once is loaded from an .npz
afterwards, the same arrays, without importing TensorFlow (issue #22, 5)."""
import os
import subprocess
import sys

import numpy as np

from conftest import ROOT, needs_mnist, tiny_config
from digitjax import data, split_cache


def _cache_files(root):
  return sorted(p for p in root.rglob("*") if p.is_file())


@needs_mnist
def test_second_read_is_the_first_from_the_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("DIGITJAX_CACHE", str(tmp_path))
  config = tiny_config()
  first = data.read_split(config, "test[:50%]", 300)
  files = _cache_files(tmp_path)
  assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left
  data.read_split(config, "test[:50%]", 200)  # another limit is another key
  assert len(_cache_files(tmp_path)) == 2
  monkeypatch.setattr(data, "_read_tfds", None)  # the second read must not reach TFDS
  second = data.read_split(config, "test[:50%]", 300)
  assert second.images.dtype == np.uint8 and second.labels.dtype == np.int32
  np.testing.assert_array_equal(second.images, first.images)
  np.testing.assert_array_equal(second.labels, first.labels)
  assert len(second) == 300


@needs_mnist
def test_a_cached_run_does_not_import_tensorflow(tmp_path, monkeypatch):
  monkeypatch.setenv("DIGITJAX_CACHE", str(tmp_path))
  config = tiny_config()
  train, val = data.load_train_val(config)
  test = data.load_test(config)
  code = (
      "import sys, numpy as np, tiny_config; from digitjax import data\n"
      "c = tiny_config.get_config(); (tr, va), te = data.load_train_val(c), data.load_test(c)\n"
      "assert 'tensorflow' not in sys.modules and 'tensorflow_datasets' not in sys.modules\n"
      "np.savez(sys.argv[1], tr=tr.images, va=va.labels, te=te.images)\n")
  out = tmp_path / "arrays.npz"
  proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT / "tests",
                        env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  with np.load(out) as f:  # same arrays, same order, same validation carve-out
    np.testing.assert_array_equal(f["tr"], train.images)
    np.testing.assert_array_equal(f["va"], val.labels)
    np.testing.assert_array_equal(f["te"], test.images)


@needs_mnist
def test_a_damaged_cache_file_is_read_again_with_one_warning(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("DIGITJAX_CACHE", str(tmp_path))
  config = tiny_config()
  first = data.read_split(config, "test", 200)
  [path] = _cache_files(tmp_path)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  capsys.readouterr()
  again = data.read_split(config, "test", 200)
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and err.startswith("warning: the cached split")
  assert "damaged" in err
  np.testing.assert_array_equal(again.images, first.images)
  np.testing.assert_array_equal(again.labels, first.labels)
  [rewritten] = _cache_files(tmp_path)
  assert rewritten == path and split_cache.load(str(path)) is not None  # whole again
