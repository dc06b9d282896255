"""experiments.npz_data: the runner without TensorFlow, on .npz files exported from TFDS."""
import numpy as np
import pytest

from conftest import needs_mnist, tiny_config
from digitjax import data
from digitjax.errors import UserError
from experiments import npz_data


@needs_mnist
def test_exported_splits_read_back_exactly_as_tfds_reads_them(tmp_path, monkeypatch):
  npz_data.export("mnist", str(tmp_path))
  config = tiny_config()
  tfds_test = data._read(config, "test", 500)
  tfds_train, tfds_val = data.load_train_val(config)
  monkeypatch.setattr(data, "_read", npz_data.reader(str(tmp_path)))
  monkeypatch.setattr(data, "is_prepared", npz_data.prepared(str(tmp_path)))
  npz_test = data._read(config, "test", 500)
  np.testing.assert_array_equal(npz_test.images, tfds_test.images)
  np.testing.assert_array_equal(npz_test.labels, tfds_test.labels)
  npz_train, npz_val = data.load_train_val(config)  # same seeded validation carve-out
  np.testing.assert_array_equal(npz_train.images, tfds_train.images)
  np.testing.assert_array_equal(npz_val.labels, tfds_val.labels)
  assert data.is_prepared(config)
  config.dataset.name = "fashion_mnist"
  assert not data.is_prepared(config)
  with pytest.raises(UserError, match="export fashion_mnist DIR"):
    data._read(config, "test")


def test_resizing_configs_are_refused_with_a_message(tmp_path):
  config = tiny_config(**{"dataset.image_size": 32})
  with pytest.raises(UserError, match="native size only"):
    npz_data.reader(str(tmp_path))(config, "train")


@pytest.mark.parametrize("dataset,message", [
    ("nosuch", "unknown dataset 'nosuch'; digitjax reads cifar10"),
    ("cifar10", "TFDS_DATA_DIR")])  # not prepared in an empty data dir, offline
def test_export_of_an_unreadable_dataset_is_one_message_and_writes_nothing(
    tmp_path, capsys, no_prepared_data, dataset, message):
  with pytest.raises(SystemExit) as exit_:
    npz_data.main(["export", dataset, str(tmp_path / "out")])
  assert exit_.value.code == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / "out").exists()
