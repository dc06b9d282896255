"""Exported .npz splits ($DIGITJAX_NPZ_DIR, digitjax.npz_source): training without
TensorFlow on the same pixels TFDS gives (experiments.without_tfds exports them)."""
import numpy as np
import pytest

from conftest import needs_mnist, tiny_config
from digitjax import data
from digitjax.errors import UserError
from digitjax import npz_source
from experiments import without_tfds


@needs_mnist
def test_exported_splits_read_back_exactly_as_tfds_reads_them(tmp_path, monkeypatch):
  without_tfds.export("mnist", str(tmp_path))
  config = tiny_config()
  tfds_test = data.read_split(config, "test", 500)
  tfds_train, tfds_val = data.load_train_val(config)
  tfds_slice = data.read_split(config, "test[10%:20%]")
  monkeypatch.setenv("DIGITJAX_NPZ_DIR", str(tmp_path))
  monkeypatch.setattr(data, "read_tfds", None)  # nothing may reach TFDS now
  npz_test = data.read_split(config, "test", 500)
  np.testing.assert_array_equal(npz_test.images, tfds_test.images)
  np.testing.assert_array_equal(npz_test.labels, tfds_test.labels)
  npz_slice = data.read_split(config, "test[10%:20%]")  # cut from test.npz
  np.testing.assert_array_equal(npz_slice.images, tfds_slice.images)
  np.testing.assert_array_equal(npz_slice.labels, tfds_slice.labels)
  npz_train, npz_val = data.load_train_val(config)  # same seeded validation carve-out
  np.testing.assert_array_equal(npz_train.images, tfds_train.images)
  np.testing.assert_array_equal(npz_val.labels, tfds_val.labels)
  assert data.is_prepared(config)
  config.dataset.name = "fashion_mnist"
  assert not data.is_prepared(config)
  with pytest.raises(UserError, match="export fashion_mnist DIR"):
    data.read_split(config, "test")


def test_resizing_configs_are_refused_with_a_message(tmp_path):
  config = tiny_config(**{"dataset.image_size": 32})
  with pytest.raises(UserError, match="native size only"):
    npz_source.read(str(tmp_path), config, "train")


@pytest.mark.parametrize("dataset,message", [
    ("nosuch", "unknown dataset 'nosuch'; digitjax reads cifar10"),
    ("cifar10", "TFDS_DATA_DIR")])  # not prepared in an empty data dir, offline
def test_export_of_an_unreadable_dataset_is_one_message_and_writes_nothing(
    tmp_path, capsys, no_prepared_data, dataset, message):
  with pytest.raises(SystemExit) as exit_:
    without_tfds.main(["export", dataset, str(tmp_path / "out")])
  assert exit_.value.code == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / "out").exists()


def _jpeg(rng, h, w) -> bytes:
  import io
  from PIL import Image

  buf = io.BytesIO()
  smooth = np.cumsum(rng.integers(-9, 10, (h, w, 3)), axis=1) % 256  # photo-like
  Image.fromarray(smooth.astype(np.uint8)).save(buf, format="JPEG", quality=90)
  return buf.getvalue()


def test_encoded_photos_decode_and_resize_as_tensorflow_does(tmp_path):
  """tf_flowers travels as JPEG bytes: Pillow's decode and npz_source.resize_bilinear give
  exactly digitjax.data's pixels (decode_jpeg INTEGER_ACCURATE, tf.image.resize, cast),
  and TFDS percent slices cut the same rows."""
  import tensorflow as tf

  rng = np.random.default_rng(0)
  blobs = [_jpeg(rng, h, w) for h, w in ((150, 225), (161, 150), (150, 150), (97, 203))]
  labels = np.arange(len(blobs), dtype=np.int32)
  (tmp_path / "tf_flowers").mkdir()
  np.savez(tmp_path / "tf_flowers" / "train.jpeg.npz",
           data=np.frombuffer(b"".join(blobs), np.uint8),
           offsets=np.cumsum([0] + [len(b) for b in blobs]), labels=labels)
  for size in (150, 224, 32):
    config = tiny_config(**{"dataset.name": "tf_flowers", "dataset.image_size": size})
    got = npz_source.read(str(tmp_path), config, "train")
    want = np.stack([tf.cast(tf.image.resize(tf.io.decode_jpeg(
        b, channels=3, dct_method="INTEGER_ACCURATE"), (size, size)), tf.uint8).numpy()
        for b in blobs])
    np.testing.assert_array_equal(got.images, want)
    np.testing.assert_array_equal(got.labels, labels)
  head = npz_source.read(str(tmp_path), config, "train[:80%]")  # TFDS: round(0.8*4) = 3
  tail = npz_source.read(str(tmp_path), config, "train[80%:]")
  assert list(head.labels) == [0, 1, 2] and list(tail.labels) == [3]
  np.testing.assert_array_equal(tail.images[0], want[3])
