"""Run the reproduce runner where TensorFlow is not installed, e.g. a lent GPU machine.

digitjax reads its datasets with TFDS, and TFDS reads its files with TensorFlow. An
accelerator machine may have JAX but neither (and no network to install them). So export
the splits once on a machine that has TFDS, carry the .npz files over, and run the
runner there with the dataset reader swapped for them:

  python -m experiments.npz_data export mnist .gpu/data        # here: TFDS -> .npz
  python -m experiments.npz_data run .gpu/data MODULE [ARGS]   # there, e.g.
      ... run .gpu/data experiments.reproduce --report D --rows D1,D2 --heavy --together
      ... run .gpu/data experiments.sweep experiments/sweeps/cnn_bn_readings.py
      ... run .gpu/data digitjax.main --config=configs/cnn_bn_plus.py --workdir=...

Each file holds exactly what digitjax.data reads from TFDS for that split (uint8 images,
int32 labels, TFDS's order), so the runs see the same examples in the same order and the
validation split is carved from it by the same seeded permutation.
"""
from __future__ import annotations

import os
import runpy
import sys

import numpy as np

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
  for split in SPLITS:
    s = data._read(config, split)  # a dataset that cannot be read leaves out_dir alone
    os.makedirs(os.path.join(out_dir, dataset), exist_ok=True)
    path = os.path.join(out_dir, dataset, f"{split}.npz")
    np.savez_compressed(path, images=s.images, labels=s.labels)
    print(f"{path}: {len(s)} examples, images {s.images.shape} {s.images.dtype}")


def _path(npz_dir: str, config, split: str) -> str:
  return os.path.join(npz_dir, config.dataset.name, f"{split}.npz")


def reader(npz_dir: str):
  """A stand-in for digitjax.data._read that serves npz_dir's files."""
  from digitjax import data
  from digitjax.errors import UserError

  def read(config, split: str, limit: int = 0) -> data.Split:
    if config.dataset.image_size:
      raise UserError("experiments.npz_data serves datasets at their native size only; "
                      f"this config resizes to {config.dataset.image_size}.")
    path = _path(npz_dir, config, split)
    if not os.path.exists(path):
      raise UserError(f"no {path}: export it where TFDS works, with "
                      f"`python -m experiments.npz_data export {config.dataset.name} DIR`.")
    with np.load(path) as f:
      images, labels = f["images"], f["labels"]
    if limit:
      images, labels = images[:limit], labels[:limit]
    return data.Split(images, labels)

  return read


def prepared(npz_dir: str):
  """A stand-in for digitjax.data.is_prepared: both splits exported to npz_dir."""
  return lambda config: all(os.path.exists(_path(npz_dir, config, s)) for s in (
      config.dataset.train_split, config.dataset.test_split))


def use_npz(npz_dir: str) -> None:
  """Swaps digitjax.data's TFDS reader and is-prepared check for the files in npz_dir."""
  from digitjax import data

  data._read = reader(npz_dir)
  data.is_prepared = prepared(npz_dir)


def main(argv: list[str]) -> None:
  from digitjax.errors import UserError

  if len(argv) >= 3 and argv[0] == "export":
    try:
      export(argv[1], argv[2])
    except UserError as e:  # unknown or unprepared dataset: one line, as digitjax.main
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  elif len(argv) >= 3 and argv[0] == "run":
    use_npz(argv[1])
    sys.argv = [argv[2]] + argv[3:]
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
  else:
    sys.exit(__doc__)


if __name__ == "__main__":
  main(sys.argv[1:])
