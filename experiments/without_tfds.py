"""Export datasets to .npz files, to train where TensorFlow is not installed (a lent GPU).

digitjax reads its datasets with TFDS, and TFDS reads its files with TensorFlow. An
accelerator machine may have JAX but neither (and no network to install them). So export
the splits once on a machine that has TFDS, carry the files over, and point
$DIGITJAX_NPZ_DIR at them there: digitjax.data then reads them instead of TFDS
(digitjax/npz_source.py: the same pixels, labels and order).

  python -m experiments.without_tfds export mnist .gpu/data        # here: TFDS -> .npz
  DIGITJAX_NPZ_DIR=.gpu/data python -m experiments.reproduce --report D --rows D1 --heavy
  python -m experiments.without_tfds run .gpu/data MODULE [ARGS]   # the same, spelled out:
      ... run .gpu/data experiments.sweep experiments/sweep/specs/cnn_bn_readings.py
      ... run .gpu/data digitjax.main --config=configs/cnn_bn_plus.py --workdir=...

Datasets of photos of varying size (tf_flowers) are exported as their encoded JPEG bytes
(`<split>.jpeg.npz`), decoded and resized where they are read.
"""
from __future__ import annotations

import os
import runpy
import sys

import numpy as np

from digitjax import npz_source

SPLITS = ("train", "test")


def export(dataset: str, out_dir: str) -> None:
  """Writes <out_dir>/<dataset>/<split>.npz for the train and test splits (via TFDS)."""
  from digitjax import config as config_lib, data
  from digitjax.errors import UserError

  if dataset not in data.DATASETS:
    raise UserError(f"unknown dataset {dataset!r}; digitjax reads "
                    f"{', '.join(sorted(data.DATASETS))}.")
  config = config_lib.get_config()
  config.dataset.name = dataset
  if data.DATASETS[dataset].image_shape[0] is None:
    return export_encoded(config, out_dir)
  for split in SPLITS:
    s = data.read_tfds(config, split)  # a dataset that cannot be read leaves out_dir alone
    os.makedirs(os.path.join(out_dir, dataset), exist_ok=True)
    path = os.path.join(out_dir, dataset, f"{split}.npz")
    np.savez_compressed(path, images=s.images, labels=s.labels)
    print(f"{path}: {len(s)} examples, images {s.images.shape} {s.images.dtype}")


def export_encoded(config, out_dir: str) -> None:
  """Writes <out_dir>/<dataset>/train.jpeg.npz: the split's encoded images as TFDS stores
  them (one byte array and offsets), and its labels."""
  import tensorflow_datasets as tfds
  from digitjax import data

  builder = data._builder(config)
  ds = builder.as_dataset(split="train", shuffle_files=False,
                          decoders={"image": tfds.decode.SkipDecoding()},
                          read_config=tfds.ReadConfig(try_autocache=False))
  blobs, labels = [], []
  for ex in tfds.as_numpy(ds):
    blobs.append(np.frombuffer(ex["image"], np.uint8))
    labels.append(ex["label"])
  os.makedirs(os.path.join(out_dir, config.dataset.name), exist_ok=True)
  path = os.path.join(out_dir, config.dataset.name, "train.jpeg.npz")
  offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
  np.savez(path, data=np.concatenate(blobs), offsets=offsets,
           labels=np.asarray(labels, np.int32))
  print(f"{path}: {len(blobs)} encoded images, {offsets[-1] / 1e6:.1f} MB")


def main(argv: list[str]) -> None:
  from digitjax.errors import UserError

  if len(argv) >= 3 and argv[0] == "export":
    try:
      export(argv[1], argv[2])
    except UserError as e:  # unknown or unprepared dataset: one line, as digitjax.main
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  elif len(argv) >= 3 and argv[0] == "run":
    os.environ[npz_source.ENV] = os.path.abspath(argv[1])
    sys.argv = [argv[2]] + argv[3:]
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
  else:
    sys.exit(__doc__)


if __name__ == "__main__":
  main(sys.argv[1:])
