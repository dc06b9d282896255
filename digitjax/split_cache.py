"""The split cache: a split read through TFDS is written once to an .npz of its uint8
arrays ($DIGITJAX_CACHE, else ~/.cache/digitjax), and later reads load that file without
TensorFlow, TFDS or the TFRecord checks (digitjax.data.read_tfds uses it).

A cache file is keyed by everything that decides its arrays (path), written atomically
(save), and one found damaged is deleted and read again (load).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import sys
import tempfile
import zipfile

import numpy as np

from digitjax.datasets import Split


_CACHE_FORMAT = 1  # bump when what a cache file holds changes


def cache_dir() -> str:
  """Where read splits are cached: $DIGITJAX_CACHE, else ~/.cache/digitjax."""
  return os.environ.get("DIGITJAX_CACHE") or os.path.join(
      os.path.expanduser("~"), ".cache", "digitjax")


def _prepared_folder(config) -> str | None:
  """The one prepared copy of config's dataset under its data dir (TFDS's
  <data_dir>/<name>/<version>), or None where there are none or several."""
  data_dir = (config.dataset.data_dir or os.environ.get("TFDS_DATA_DIR")
              or os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))
  found = glob.glob(os.path.join(data_dir, config.dataset.name, "*", "dataset_info.json"))
  return os.path.dirname(found[0]) if len(found) == 1 else None


def prepared_version(config) -> str | None:
  """The TFDS version of config's prepared dataset ('3.0.1'), for provenance; None when
  it cannot be told without importing TFDS (none or several prepared)."""
  folder = _prepared_folder(config)
  return os.path.basename(folder) if folder else None


def path(config, split: str, limit: int) -> str | None:
  """The cache file of this read, or None when it cannot be keyed without TFDS.

  Keyed by dataset, TFDS version, split string, image size and limit, and by the
  prepared copy it comes from (its folder and the size and mtime of each file in it): a
  copy prepared again, damaged or elsewhere is another key. Only a dataset with exactly
  one prepared version under its data dir is cached (which of several TFDS would open
  is TFDS's choice, known only after importing it)."""
  name = config.dataset.name
  folder = _prepared_folder(config)
  if folder is None:
    return None
  try:
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                   for f in os.scandir(folder) if f.is_file())
  except OSError:
    return None
  version = os.path.basename(folder)
  size = config.dataset.image_size or 0
  key = json.dumps([_CACHE_FORMAT, name, version, split, size, limit or 0,
                    os.path.realpath(folder), files])
  digest = hashlib.sha256(key.encode()).hexdigest()[:16]
  readable = re.sub(r"[^A-Za-z0-9_.%-]+", "_", split)
  return os.path.join(cache_dir(), name, version,
                      f"{readable}-size{size}-limit{limit or 0}-{digest}.npz")


def load(path: str) -> Split | None:
  """The cached split at path; None if there is none. A damaged file is deleted (one
  warning line) and None returned, so the split is read from TFDS again."""
  if not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      images, labels = f["images"], f["labels"]
    if (images.dtype != np.uint8 or labels.dtype != np.int32 or images.ndim != 4
        or labels.shape != images.shape[:1]):
      raise ValueError(f"arrays {images.dtype}{images.shape}, {labels.dtype}{labels.shape}")
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    print(f"warning: the cached split {path} is damaged ({type(e).__name__}: "
          f"{str(e)[:100]}); deleting it and reading the dataset again.", file=sys.stderr)
    try:
      os.remove(path)
    except OSError:
      pass
    return None
  return Split(images, labels)


def save(path: str, s: Split) -> None:
  """Writes s to path atomically (a temporary file, then os.replace): a killed run leaves
  no half file. A cache that cannot be written (read-only, full disk) is skipped."""
  tmp = None
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
      np.savez(f, images=s.images, labels=s.labels)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
    os.replace(tmp, path)
  except OSError as e:
    print(f"warning: cannot cache the split in {path} ({e}); it is read from TFDS each "
          "time.", file=sys.stderr)
    if tmp and os.path.exists(tmp):
      os.remove(tmp)
