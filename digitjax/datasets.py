"""What each dataset is (its classes and image shape), and a split's arrays.

Kept apart from the readers (digitjax.data for TFDS, digitjax.npz_source for exported
files), which both build on it; digitjax.data offers these names too.
"""
from __future__ import annotations

import dataclasses

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
