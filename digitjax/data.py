"""Datasets: TFDS in, uint8 numpy arrays out.

All four datasets of the reports fit in memory many times over, so a split is read once
with tensorflow-datasets into a uint8 array (N, H, W, C) and int32 labels. The trainer
keeps those arrays on the device and shuffles, scales to [0, 1] and augments inside the
jitted step, so no input pipeline runs per step.

A split read through TFDS is also written, once, to a cache folder ($DIGITJAX_CACHE, else
~/.cache/digitjax) as an .npz of those arrays; later reads of it load that file without
importing TensorFlow (digitjax.split_cache). With $DIGITJAX_NPZ_DIR set, splits come from files
exported by `python -m experiments.without_tfds export` instead (npz_source): a machine with
JAX alone trains on the same pixels.

Validation is carved from the train split with a permutation seeded by
config.dataset.split_seed. The test split is read by `load_test` alone, which the
trainer calls only for the final evaluation.
"""
from __future__ import annotations

import glob
import os
import re
import socket

# TensorFlow only reads and decodes files here: its C++ notices (TF 2.21 prints some at
# INFO whatever TF_CPP_MIN_LOG_LEVEL says, e.g. that oneDNN's float kernels are on) are noise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np

from digitjax import npz_source, split_cache
from digitjax.datasets import DATASETS, DatasetInfo, Split, image_shape  # noqa: F401
from digitjax.errors import UserError


_HINT = ("Point TFDS_DATA_DIR (or --config.dataset.data_dir) at a folder of prepared TFDS "
         "datasets, e.g. `export TFDS_DATA_DIR=$PWD/../shared/tensorflow_datasets`.")


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


def _prepared_once(name: str, data_dir: str | None) -> str | None:
  """The dataset_info.json of a prepared copy of `name` under data_dir, if one is there."""
  found = sorted(glob.glob(os.path.join(data_dir or "", name, "*", "dataset_info.json")))
  return found[-1] if data_dir and found else None


def is_prepared(config) -> bool:
  """Whether config's dataset is prepared locally (never downloads, never raises): the
  reproduce runner lists rows without data as pending instead of running them. A
  prepared copy that TFDS cannot open counts as prepared: running it says what is
  damaged, where "pending data" would send the user to prepare it again blindly.
  With $DIGITJAX_NPZ_DIR set: whether both splits are exported there."""
  if npz_source.npz_dir():
    return npz_source.is_exported(npz_source.npz_dir(), config)
  data_dir = config.dataset.data_dir or os.environ.get("TFDS_DATA_DIR") or None
  try:
    return _tfds_builder(config.dataset.name, data_dir)[1]
  except Exception:
    return _prepared_once(config.dataset.name, data_dir) is not None


def _tf_reason(e) -> str:
  """TensorFlow's error message without its graph-node and op decorations."""
  text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]|name: *$", "", e.message.splitlines()[0])
  return text.strip(" '")[:150]


def _damaged(name: str, what: str) -> UserError:
  return UserError(f"dataset {name!r} is damaged: {what}. Prepare it again (delete its "
                   "folder and let TFDS download it, or copy a good prepared folder there), "
                   f"then rerun. {_HINT}")


def _builder(config):
  name = config.dataset.name
  data_dir = _data_dir(config)
  try:
    builder, prepared = _tfds_builder(name, data_dir)  # imports TFDS: only when needed
  except Exception as e:  # e.g. a damaged dataset_info.json
    info = _prepared_once(name, data_dir)
    if info is None:
      raise
    raise _damaged(name, f"TFDS cannot open {info} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:150]})") from e
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


def _check_files(builder, config, split: str) -> None:
  """Every shard file of the split is there and reads back whole: its recorded number of
  records, each passing TFRecord's checksums (nothing decoded; MNIST's test split takes
  a fraction of a second). A damaged file is then one message, before any training."""
  import tensorflow as tf

  name = config.dataset.name
  for shard in builder.info.splits[split].file_instructions:
    path = shard.filename
    if not os.path.exists(path):
      raise _damaged(name, f"its file {path} is missing")
    try:
      n = int(tf.data.TFRecordDataset(path).reduce(0, lambda count, _: count + 1))
    except tf.errors.OpError as e:
      raise _damaged(name, f"{path} cannot be read ({_tf_reason(e)})") from None
    if n != shard.examples_in_shard:
      raise _damaged(name, f"{path} holds {n} records where its dataset_info.json records "
                           f"{shard.examples_in_shard}")


def check_split(config, split: str, builder=None) -> None:
  """Raises UserError if the split's files are missing or damaged (see _check_files)."""
  builder = builder or _builder(config)
  if not builder.info.splits:  # no files recorded to check (tfds.testing.mock_data)
    return
  try:
    info = builder.info.splits[split]
  except (ValueError, KeyError) as e:
    raise UserError(f"dataset {config.dataset.name!r} has no split {split!r}; it has "
                    f"{', '.join(builder.info.splits.keys())}.") from e
  if info.num_examples <= 0:  # 'test[90%:90%]', or 'test[80%:20%]' (TFDS counts -6000)
    raise UserError(f"split {split!r} of dataset {config.dataset.name!r} holds no "
                    f"examples (a slice whose end is not after its start is empty); its "
                    f"splits are {_sizes(builder)}. Choose a slice that holds some.")
  _check_files(builder, config, split)


def _sizes(builder) -> str:
  return ", ".join(f"{name} ({s.num_examples:,})" for name, s in builder.info.splits.items())


def _read_tfds(config, split: str, limit: int = 0) -> Split:
  """Reads one TFDS split (e.g. 'train', 'test[:50%]') into memory."""
  import tensorflow as tf
  import tensorflow_datasets as tfds

  builder = _builder(config)
  check_split(config, split, builder)
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
    # INTEGER_FAST, differs by up to 7 levels), so experiments.without_tfds's exports agree
    ds = ds.map(lambda x, y: (tf.io.decode_jpeg(x, channels=3, dct_method="INTEGER_ACCURATE"),
                              y), num_parallel_calls=tf.data.AUTOTUNE)
  size = config.dataset.image_size
  if size:
    ds = ds.map(lambda x, y: (tf.cast(tf.image.resize(x, (size, size)), tf.uint8), y),
                num_parallel_calls=tf.data.AUTOTUNE)
  images, labels = [], []
  try:
    for x, y in tfds.as_numpy(ds.batch(4096)):
      images.append(x)
      labels.append(y)
  except tf.errors.OpError as e:  # e.g. an image that does not decode
    raise _damaged(config.dataset.name, f"reading its {split!r} split failed "
                                        f"({_tf_reason(e)})") from None
  return Split(np.concatenate(images).astype(np.uint8),
               np.concatenate(labels).astype(np.int32))


def read_tfds(config, split: str, limit: int = 0) -> Split:
  """_read_tfds through the cache: a split read (and checked) once is loaded from its
  .npz afterwards, without TensorFlow, TFDS or the TFRecord checks of check_split."""
  path = split_cache.path(config, split, limit)
  s = split_cache.load(path) if path else None
  if s is not None:
    return s
  s = _read_tfds(config, split, limit)
  path = split_cache.path(config, split, limit)  # now prepared, if TFDS just downloaded it
  if path:
    split_cache.save(path, s)
  return s


def read_split(config, split: str, limit: int = 0) -> Split:
  """The split (its first `limit` examples if limit), from the data source: exported .npz
  files when $DIGITJAX_NPZ_DIR is set (a machine without TensorFlow: npz_source), else
  TFDS through the split cache."""
  folder = npz_source.npz_dir()
  if folder:
    return npz_source.read(folder, config, split, limit)
  return read_tfds(config, split, limit)


def load_train_val(config) -> tuple[Split, Split | None]:
  """The train split, less a seeded validation_fraction that becomes the val split.

  With config.dataset.validation_split set, that TFDS split is the val split instead
  (tf_flowers: train "train[:80%]", val "train[80%:]", as report E's 80/20 split). With
  validation_fraction 0 and no validation_split there is no val split (None): every
  training image trains (configs/speedrun_mnist.py).
  """
  _check_test_split(config)
  if config.dataset.validation_split or not config.dataset.validation_fraction:
    train = read_split(config, config.dataset.train_split, config.dataset.max_train_examples)
    val = (read_split(config, config.dataset.validation_split,
                      config.dataset.max_test_examples)
           if config.dataset.validation_split else None)
    if len(train) < config.batch_size:
      raise UserError(f"{len(train)} training examples in {config.dataset.train_split!r} "
                      f"are fewer than batch_size={config.batch_size}.")
    return train, val
  full = read_split(config, config.dataset.train_split, config.dataset.max_train_examples)
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


def _check_test_split(config) -> None:
  """The test split is read only after training; its files are checked before it, so a
  damaged or misnamed test split is reported before the run, not after it."""
  if npz_source.npz_dir():  # exported files are checked as they are read
    return
  if config.dataset.test_split in (config.dataset.train_split,
                                   config.dataset.validation_split):
    return  # read, so checked, before training anyway (report E's val = test)
  path = split_cache.path(config, config.dataset.test_split, config.dataset.max_test_examples)
  if path and os.path.exists(path):  # cached from a checked read; damaged: read again then
    return
  check_split(config, config.dataset.test_split)


def load_test(config) -> Split:
  """The held-out test split: read only for the final evaluation."""
  return read_split(config, config.dataset.test_split, config.dataset.max_test_examples)

