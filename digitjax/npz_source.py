"""Splits from .npz files exported by `python -m experiments.without_tfds export`, read
without TensorFlow: the data source when $DIGITJAX_NPZ_DIR is set (see data.read_split).

An accelerator machine may have JAX but neither TensorFlow nor a network. Each file holds
exactly what digitjax.data reads from TFDS for that split (uint8 images, int32 labels,
TFDS's order), so runs see the same examples in the same order and the validation split
is carved from it by the same seeded permutation.

Photos of varying size (tf_flowers) travel as their encoded JPEG bytes
(`<split>.jpeg.npz`: 38 MB, where decoded 150x150 arrays would be 250 MB) and are decoded
here with Pillow (libjpeg's exact IDCT, as data.py asks TensorFlow for) and resized by
`resize_bilinear`, TensorFlow's bilinear resize written in numpy: the same pixels as
TFDS + `tf.image.resize`. TFDS slices such as "train[:80%]" or "test[:1000]" are cut from
the whole split's file, percentages with TFDS's rounding.
"""
from __future__ import annotations

import io
import os
import re

import numpy as np

from digitjax.datasets import DATASETS, Split
from digitjax.errors import UserError

ENV = "DIGITJAX_NPZ_DIR"


def npz_dir() -> str | None:
  """The folder of exported splits to read instead of TFDS, if $DIGITJAX_NPZ_DIR is set."""
  return os.environ.get(ENV) or None


def encoded(name: str) -> bool:
  """Photos of varying size (tf_flowers) are exported encoded."""
  return DATASETS[name].image_shape[0] is None


def split_path(folder: str, name: str, split: str) -> str:
  """Where the export of dataset `name`'s `split` lives under folder."""
  base = slice_of(split, 1)[0]  # a slice ("test[:10%]") is cut from its whole split
  return os.path.join(folder, name, f"{base}.jpeg.npz" if encoded(name) else f"{base}.npz")


def is_exported(folder: str, config) -> bool:
  """Both of config's splits (train and test) are exported to folder."""
  return all(os.path.exists(split_path(folder, config.dataset.name, s))
             for s in (config.dataset.train_split, config.dataset.test_split))


def _advice(name: str, again: str = "") -> str:
  return (f"export it{again} where TFDS works, with "
          f"`python -m experiments.without_tfds export {name} DIR`")


def read(folder: str, config, split: str, limit: int = 0):
  """The split as a Split, from folder's export; a missing or damaged file, or a
  resize of a fixed-size dataset (exports hold native sizes only), is a UserError."""
  name = config.dataset.name
  if config.dataset.image_size and not encoded(name):
    raise UserError(f"${ENV} serves {name} at its native size only; this config resizes "
                    f"it to {config.dataset.image_size} (unset ${ENV} to read it with TFDS).")
  path = split_path(folder, name, split)
  if not os.path.exists(path):
    raise UserError(f"no {path} (${ENV}={folder}): {_advice(name)}.")
  try:
    with np.load(path) as f:
      arrays = {k: f[k] for k in f.files}
    if encoded(name):
      images, labels = _decode(arrays, config.dataset.image_size, split)
    else:
      rows = slice_of(split, len(arrays["labels"]))[1]
      images, labels = arrays["images"][rows], arrays["labels"][rows]
  except UserError:
    raise
  except Exception as e:  # truncated or damaged: zipfile, zlib, EOF, key or JPEG errors
    raise UserError(f"{path} is damaged ({type(e).__name__}: {str(e)[:100]}); "
                    f"{_advice(name, ' again')}.") from None
  if limit:
    images, labels = images[:limit], labels[:limit]
  return Split(images, labels)


def _decode(arrays: dict, size: int, split: str):
  """The rows of `split` from an encoded export, decoded and resized to size x size."""
  from PIL import Image

  blob, offsets, labels = arrays["data"], arrays["offsets"], arrays["labels"]
  rows = range(len(labels))[slice_of(split, len(labels))[1]]
  images = np.empty((len(rows), size, size, 3), np.uint8)
  for i, r in enumerate(rows):
    jpeg = blob[offsets[r]:offsets[r + 1]].tobytes()
    images[i] = resize_bilinear(np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")), size)
  return images, labels[rows.start:rows.stop]


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


def slice_of(split: str, n: int) -> tuple[str, slice]:
  """("train", slice) for "train", "train[:80%]", "train[80%:]" (TFDS's rounding)."""
  m = re.fullmatch(r"(\w+)(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?", split)
  if not m:
    raise UserError(f"cannot read split {split!r} from an export; exports take a split "
                    "name with an optional slice, e.g. 'train' or 'train[:80%]'.")
  name, a, a_pct, b, b_pct = m.groups()

  def bound(v, pct):
    if v in (None, ""):
      return None
    return int(round(int(v) * n / 100)) if pct else int(v)

  return name, slice(bound(a, a_pct), bound(b, b_pct))
