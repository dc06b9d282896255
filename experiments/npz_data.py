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

Datasets of photos of varying size (tf_flowers) are exported as their encoded JPEG bytes
instead (`<split>.jpeg.npz`: 37 MB, where decoded 150x150 arrays would be 250 MB), and
decoded there with Pillow and resized by `resize_bilinear`, TensorFlow's bilinear
resize (half-pixel centres, no antialiasing) written in numpy: the same pixels as
digitjax.data's `tf.image.resize`. TFDS percent slices such as "train[:80%]" are cut
from the whole split with TFDS's rounding.
"""
from __future__ import annotations

import io
import os
import re
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
  if data.DATASETS[dataset].image_shape[0] is None:
    return export_encoded(config, out_dir)
  for split in SPLITS:
    s = data._read(config, split)  # a dataset that cannot be read leaves out_dir alone
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


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 (H, W, C) -> uint8 (size, size, C) as `tf.cast(tf.image.resize(x, (size,
  size)), tf.uint8)`: TF's ResizeBilinear kernel (half-pixel centres; the upper
  neighbour is ceil(x), clamped), in float32, then truncated to uint8."""
  def weights(in_size):
    scale = np.float32(in_size) / np.float32(size)
    x = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    lower = np.maximum(np.floor(x), 0).astype(np.int64)
    upper = np.minimum(np.ceil(x), in_size - 1).astype(np.int64)
    return lower, upper, (x - np.floor(x)).astype(np.float32)

  img = image.astype(np.float32)
  (y0, y1, yl), (x0, x1, xl) = weights(image.shape[0]), weights(image.shape[1])
  xl = xl[None, :, None]
  top = img[y0][:, x0] + (img[y0][:, x1] - img[y0][:, x0]) * xl
  bottom = img[y1][:, x0] + (img[y1][:, x1] - img[y1][:, x0]) * xl
  out = top + (bottom - top) * yl[:, None, None]
  return out.astype(np.uint8)


def _slice(split: str, n: int) -> tuple[str, slice]:
  """("train", slice) for "train", "train[:80%]", "train[80%:]" (TFDS's rounding)."""
  m = re.fullmatch(r"(\w+)(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?", split)
  if not m:
    raise ValueError(f"cannot read split {split!r} from an export")
  name, a, a_pct, b, b_pct = m.groups()

  def bound(v, pct):
    if v in (None, ""):
      return None
    return int(round(int(v) * n / 100)) if pct else int(v)

  return name, slice(bound(a, a_pct), bound(b, b_pct))


def _read_encoded(path: str, config, split: str):
  from PIL import Image
  from digitjax import data

  size = config.dataset.image_size
  try:
    with np.load(path) as f:
      blob, offsets, labels = f["data"], f["offsets"], f["labels"]
  except Exception as e:  # truncated or damaged
    from digitjax.errors import UserError
    raise UserError(f"{path} is damaged ({type(e).__name__}: {str(e)[:100]}); export it "
                    f"again with `python -m experiments.npz_data export "
                    f"{config.dataset.name} DIR`.") from None
  rows = range(len(labels))[_slice(split, len(labels))[1]]
  images = np.empty((len(rows), size, size, 3), np.uint8)
  for i, r in enumerate(rows):
    jpeg = blob[offsets[r]:offsets[r + 1]].tobytes()
    images[i] = resize_bilinear(np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")), size)
  return data.Split(images, labels[rows.start:rows.stop])


def _encoded(config) -> bool:
  """Photos of varying size (tf_flowers) are exported encoded."""
  from digitjax import data

  return data.DATASETS[config.dataset.name].image_shape[0] is None


def _path(npz_dir: str, config, split: str) -> str:
  if _encoded(config):
    name = _slice(split, 1)[0]
    return os.path.join(npz_dir, config.dataset.name, f"{name}.jpeg.npz")
  return os.path.join(npz_dir, config.dataset.name, f"{split}.npz")


def reader(npz_dir: str):
  """A stand-in for digitjax.data._read that serves npz_dir's files."""
  from digitjax import data
  from digitjax.errors import UserError

  def read(config, split: str, limit: int = 0) -> data.Split:
    if config.dataset.image_size and not _encoded(config):
      raise UserError("experiments.npz_data serves datasets at their native size only; "
                      f"this config resizes to {config.dataset.image_size}.")
    path = _path(npz_dir, config, split)
    if not os.path.exists(path):
      raise UserError(f"no {path}: export it where TFDS works, with "
                      f"`python -m experiments.npz_data export {config.dataset.name} DIR`.")
    if _encoded(config):
      s = _read_encoded(path, config, split)
      return data.Split(s.images[:limit], s.labels[:limit]) if limit else s
    try:
      with np.load(path) as f:
        images, labels = f["images"], f["labels"]
    except Exception as e:  # truncated or damaged: zipfile, zlib, EOF or key errors
      raise UserError(f"{path} is damaged ({type(e).__name__}: {str(e)[:100]}); export it "
                      f"again with `python -m experiments.npz_data export "
                      f"{config.dataset.name} DIR`.") from None
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
