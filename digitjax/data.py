"""Datasets: TFDS in, uint8 numpy arrays out.

All four datasets of the reports fit in memory many times over, so a split is read once
with tensorflow-datasets into a uint8 array (N, H, W, C) and int32 labels. The trainer
keeps those arrays on the device and shuffles, scales to [0, 1] and augments inside the
jitted step, so no input pipeline runs per step.

Validation is carved from the train split with a permutation seeded by
config.dataset.split_seed. The test split is read by `load_test` alone, which the
trainer calls only for the final evaluation.
"""
from __future__ import annotations

import dataclasses
import os
import socket

# TensorFlow only reads and decodes files here: its C++ notices (TF 2.21 prints some at
# INFO whatever TF_CPP_MIN_LOG_LEVEL says, e.g. that oneDNN's float kernels are on) are noise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np

from digitjax.errors import UserError


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  num_classes: int
  image_shape: tuple[int, int, int]  # native (H, W, C); None H/W means variable size
  class_names: tuple[str, ...]


DATASETS = {
    "mnist": DatasetInfo(10, (28, 28, 1), tuple(str(i) for i in range(10))),
    "fashion_mnist": DatasetInfo(10, (28, 28, 1), (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
        "Sneaker", "Bag", "Ankle boot")),
    "cifar10": DatasetInfo(10, (32, 32, 3), (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
        "truck")),
    "tf_flowers": DatasetInfo(5, (None, None, 3), (
        "dandelion", "daisy", "tulips", "sunflowers", "roses")),
}

_HINT = ("Point TFDS_DATA_DIR (or --config.dataset.data_dir) at a folder of prepared TFDS "
         "datasets, e.g. `export TFDS_DATA_DIR=$PWD/../shared/tensorflow_datasets`.")


@dataclasses.dataclass(frozen=True)
class Split:
  images: np.ndarray  # uint8 (N, H, W, C)
  labels: np.ndarray  # int32 (N,)

  def __len__(self):
    return len(self.labels)


def image_shape(config) -> tuple[int, int, int]:
  """The (H, W, C) the model sees for this config's dataset."""
  h, w, c = DATASETS[config.dataset.name].image_shape
  size = config.dataset.image_size
  if size:
    return (size, size, c)
  if h is None:
    raise UserError(f"dataset {config.dataset.name!r} has images of varying size; set "
                    "--config.dataset.image_size (e.g. 150).")
  return (h, w, c)


def _data_dir(config) -> str | None:
  data_dir = config.dataset.data_dir or os.environ.get("TFDS_DATA_DIR") or None
  if data_dir and not os.path.isdir(data_dir):
    raise UserError(f"the TFDS data dir {data_dir!r} does not exist. {_HINT}")
  return data_dir


def _online() -> bool:
  """Whether TFDS's download host resolves; avoids minutes of retries offline."""
  try:
    socket.getaddrinfo("storage.googleapis.com", 443)
    return True
  except OSError:
    return False


def _tfds_builder(name: str, data_dir: str | None):
  """(tfds.builder, whether it is prepared), without TFDS's warning for an absent dataset
  ("Variant folder ... has no dataset_info.json"): the callers say it once, in words."""
  import tensorflow_datasets as tfds
  from absl import logging

  level = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)
  try:
    builder = tfds.builder(name, data_dir=data_dir)
    return builder, builder.is_prepared()
  finally:
    logging.set_verbosity(level)


def is_prepared(config) -> bool:
  """Whether config's dataset is prepared locally (never downloads, never raises): the
  reproduce runner lists rows without data as pending instead of running them."""
  data_dir = config.dataset.data_dir or os.environ.get("TFDS_DATA_DIR") or None
  try:
    return _tfds_builder(config.dataset.name, data_dir)[1]
  except Exception:  # an unreadable folder means "not prepared" here, not a crash
    return False


def _builder(config):
  name = config.dataset.name
  data_dir = _data_dir(config)
  builder, prepared = _tfds_builder(name, data_dir)  # imports TFDS: only when needed
  if prepared:
    return builder
  where = data_dir or "the TFDS default folder"
  if not config.dataset.download:
    raise UserError(f"dataset {name!r} is not prepared in {where} and downloading is off "
                    f"(config.dataset.download=False). {_HINT}")
  if not _online():
    raise UserError(f"dataset {name!r} is not prepared in {where} and TFDS cannot download "
                    f"it: this machine is offline. {_HINT}")
  try:
    builder.download_and_prepare()
  except Exception as e:  # network, disk, checksum: all mean "no data", say why
    raise UserError(f"dataset {name!r} is not prepared in {where} and the TFDS download "
                    f"failed ({type(e).__name__}: {str(e)[:200]}). {_HINT}") from e
  return builder


def _read(config, split: str, limit: int = 0) -> Split:
  """Reads one TFDS split (e.g. 'train', 'test[:50%]') into memory."""
  import tensorflow as tf
  import tensorflow_datasets as tfds

  builder = _builder(config)
  photos = DATASETS[config.dataset.name].image_shape[0] is None
  try:
    # each split is read once, so TFDS's in-memory cache of small datasets only adds a
    # warning when `take` stops early
    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False,
                            read_config=tfds.ReadConfig(try_autocache=False),
                            decoders={"image": tfds.decode.SkipDecoding()} if photos else None)
  except (ValueError, KeyError) as e:
    raise UserError(f"dataset {config.dataset.name!r} has no split {split!r}; it has "
                    f"{', '.join(builder.info.splits.keys())}.") from e
  if limit:
    ds = ds.take(limit)
  if photos:  # JPEG photos: libjpeg's exact IDCT, as Pillow decodes them (TF's default,
    # INTEGER_FAST, differs by up to 7 levels), so experiments.npz_data's exports agree
    ds = ds.map(lambda x, y: (tf.io.decode_jpeg(x, channels=3, dct_method="INTEGER_ACCURATE"),
                              y), num_parallel_calls=tf.data.AUTOTUNE)
  size = config.dataset.image_size
  if size:
    ds = ds.map(lambda x, y: (tf.cast(tf.image.resize(x, (size, size)), tf.uint8), y),
                num_parallel_calls=tf.data.AUTOTUNE)
  images, labels = [], []
  for x, y in tfds.as_numpy(ds.batch(4096)):
    images.append(x)
    labels.append(y)
  return Split(np.concatenate(images).astype(np.uint8),
               np.concatenate(labels).astype(np.int32))


def load_train_val(config) -> tuple[Split, Split]:
  """The train split, less a seeded validation_fraction that becomes the val split.

  With config.dataset.validation_split set, that TFDS split is the val split instead
  (tf_flowers: train "train[:80%]", val "train[80%:]", as report E's 80/20 split).
  """
  if config.dataset.validation_split:
    train = _read(config, config.dataset.train_split, config.dataset.max_train_examples)
    val = _read(config, config.dataset.validation_split, config.dataset.max_test_examples)
    if len(train) < config.batch_size:
      raise UserError(f"{len(train)} training examples in {config.dataset.train_split!r} "
                      f"are fewer than batch_size={config.batch_size}.")
    return train, val
  full = _read(config, config.dataset.train_split, config.dataset.max_train_examples)
  n = len(full)
  n_val = int(round(n * config.dataset.validation_fraction))
  if n_val < 1 or n - n_val < config.batch_size:
    raise UserError(
        f"{n} training examples with validation_fraction="
        f"{config.dataset.validation_fraction} leave {n - n_val} to train and {n_val} to "
        f"validate; batch_size={config.batch_size} needs at least that many to train and "
        "one to validate.")
  perm = np.random.default_rng(config.dataset.split_seed).permutation(n)
  train_idx, val_idx = np.sort(perm[n_val:]), np.sort(perm[:n_val])
  return (Split(full.images[train_idx], full.labels[train_idx]),
          Split(full.images[val_idx], full.labels[val_idx]))


def load_test(config) -> Split:
  """The held-out test split: read only for the final evaluation."""
  return _read(config, config.dataset.test_split, config.dataset.max_test_examples)
