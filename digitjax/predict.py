"""--mode=predict: classify image files and arrays from the shell.

  python -m digitjax.main --mode=predict --workdir=runs/tiny --images=a.png,folder/,x.npy
      [--resize] [--invert] [--top=3] [--format=text|json|csv]

Text (the default) is one line per image: name, then class and probability, K times with
--top=K, tab-separated. --format=json is one JSON list of {"image", "top": [{"class",
"probability"}]}; --format=csv has a header and one row per image and rank. Warnings go to
stderr, so stdout stays machine-readable.

Real photos rarely come at the training images' size or polarity. --resize stretches
each image to the model's input height and width (bilinear with antialiasing, the aspect
ratio not kept: crop first for that). The polarity check, for datasets whose images all
have one background (DARK_BACKGROUND), warns about images whose border is light: MNIST's
digits are light on black, so a photo of ink on paper must be inverted (--invert) first.
"""
from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from digitjax.errors import UserError

FORMATS = ("text", "json", "csv")
IMAGE_FILES = (".png", ".jpg", ".jpeg")
# datasets whose training images are light shapes on a black background: of their 10,000
# test images the rule below flags none of MNIST's and 2 of Fashion-MNIST's, and all but
# 2 of Fashion-MNIST's once inverted (all of MNIST's; tests/test_predict_options.py)
DARK_BACKGROUND = ("mnist", "fashion_mnist")
BORDER = 2  # pixels of each side the polarity check reads: MNIST's 4-pixel margin is empty
LIGHT = 0.5  # a border whose mean (0-1) is above this is a light background


def read_images(spec: str, channels: int):
  """(path, images, is_array) from --images: PNG/JPEG files, folders of them, .npy arrays."""
  groups = []
  for path in [p for p in spec.split(",") if p]:
    if os.path.isdir(path):
      files = sorted(os.path.join(path, f) for f in os.listdir(path)
                     if f.lower().endswith(IMAGE_FILES))
      if not files:
        raise UserError(f"--images: folder {path} holds no .png/.jpg/.jpeg file.")
    elif os.path.isfile(path):
      files = [path]
    else:
      raise UserError(f"--images: {path} does not exist.")
    for f in files:
      try:
        if f.lower().endswith(".npy"):
          groups.append((f, np.load(f, allow_pickle=False), True))
          continue
        groups.append((f, read_image(f, channels), False))
      except UserError:
        raise
      except Exception as e:  # noqa: BLE001 - Pillow and numpy raise OSError, ValueError,
        # SyntaxError (damaged PNG chunks), DecompressionBombError, MemoryError, ...
        raise UserError(f"--images: cannot read {f} as an image or .npy array "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:150]}).") from None
  if not groups:
    raise UserError("--images is empty: give PNG/JPEG files, folders or .npy arrays.")
  return groups


def read_image(path: str, channels: int):
  """One PNG/JPEG as uint8, or as float 0-1 when it has more than 8 bits a pixel (16-bit
  grayscale PNGs: Pillow's convert("L") would clip them to 255)."""
  from PIL import Image

  with Image.open(path) as im:
    if im.mode in ("I;16", "I;16B", "I;16L", "I") and channels == 1:
      top = 65535.0 if im.mode.startswith("I;16") or np.asarray(im).max() <= 65535 \
          else float(2**31 - 1)
      return np.asarray(im, dtype=np.float64).astype(np.float32) / np.float32(top)
    return np.asarray(im.convert("L" if channels == 1 else "RGB"))


def as_batch(images, channels: int) -> np.ndarray:
  """images as (N, H, W, C), read as Model.prepare reads them: (H, W), (N, H, W) of
  grayscale, (H, W, C) or (N, H, W, C). Left as they are if they fit none."""
  x = np.asarray(images)
  if x.ndim == 2 and channels == 1:
    return x[None, ..., None]
  if x.ndim == 3 and channels == 1 and x.shape[-1] != 1:
    return x[..., None]
  return x[None] if x.ndim == 3 else x


def resize(images, shape) -> np.ndarray:
  """(N, H, W, C) images (uint8 0-255 or float 0-1) stretched to shape's (height, width),
  as float32 0-1: bilinear, antialiased when shrinking (a photo's strokes would
  otherwise break up between the sampled pixels)."""
  import jax

  x = np.asarray(images)
  scale = np.float32(255) if x.dtype == np.uint8 else np.float32(1)
  n, _, _, c = x.shape
  y = jax.image.resize(x.astype(np.float32) / scale, (n, shape[0], shape[1], c), "linear",
                       antialias=True)
  return np.clip(np.asarray(y), 0, 1)


def light_background(images) -> np.ndarray:
  """Per image of (N, H, W, C): whether the mean of its BORDER-pixel frame is above
  LIGHT, i.e. a dark shape on a light background when the training images had black."""
  x = np.asarray(images, np.float32) / (255 if np.asarray(images).dtype == np.uint8 else 1)
  b = max(1, min(BORDER, x.shape[1] // 4, x.shape[2] // 4))
  inner = x[:, b:-b, b:-b].sum((1, 2, 3))
  frame = (x.sum((1, 2, 3)) - inner) / (x[0].size - x[0, b:-b, b:-b].size)
  return frame > LIGHT


def _fit(model, path: str, images, resize_: bool, invert: bool) -> np.ndarray:
  """One group of --images as the model takes them, or UserError naming the file and
  the model's input shape."""
  h, w, c = model.input_shape
  x = as_batch(images, c)
  if x.ndim == 4 and x.shape[1:3] != (h, w) and not model.config.dataset.image_size:
    if not resize_:  # a model of photos (image_size set) resizes as its training did
      raise UserError(f"--images: {path}: images of {x.shape[1]}x{x.shape[2]} pixels; this "
                      f"model takes {h}x{w}x{c}. Pass --resize to stretch them to {h}x{w}.")
    x = resize(x, (h, w))
  if invert:
    x = (255 - x) if x.dtype == np.uint8 else (1 - x)
  return x


def predict(workdir: str, images: str, top: int = 1, fmt: str = "text",
            resize_: bool = False, invert: bool = False) -> list[dict]:
  """--mode=predict: each image's `top` most probable classes, printed in `fmt`; returns
  [{"image": name, "top": [{"class", "probability"}, ...]}, ...]."""
  from digitjax import inference

  if fmt not in FORMATS:
    raise UserError(f"--format={fmt}: choose one of {', '.join(FORMATS)}.")
  model = inference.load(workdir)
  classes = len(model.class_names)
  if not 1 <= top <= classes:
    raise UserError(f"--top={top}: this model has {classes} classes; give 1 to {classes}.")
  rows, light = [], []
  for path, arr, is_array in read_images(images, model.input_shape[2]):
    try:
      x = _fit(model, path, arr, resize_, invert)
      p = model.predict(x)
    except UserError as e:
      message = str(e)
      raise UserError(message if message.startswith("--images") else
                      f"--images: {path}: {message}") from None
    names = [f"{path}[{i}]" for i in range(len(p))] if is_array else [path]
    if model.config.dataset.name in DARK_BACKGROUND:
      light += [n for n, flag in zip(names, light_background(x)) if flag]
    for name, row in zip(names, p):
      best = np.argsort(-row, kind="stable")[:top]
      rows.append({"image": name, "top": [{"class": model.class_names[k],
                                           "probability": float(row[k])} for k in best]})
  print(render(rows, fmt), end="")
  if light:
    _warn_polarity(light, len(rows), model.config.dataset.name, invert)
  return rows


def _warn_polarity(names: list[str], total: int, dataset: str, inverted: bool) -> None:
  import sys

  some = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
  advice = ("drop --invert" if inverted else "pass --invert (or invert them yourself)")
  print(f"warning: {len(names)} of {total} images look like a dark shape on a light "
        f"background ({some}); {dataset}'s training images are light on black, so these "
        f"will be misread: {advice}.", file=sys.stderr)


def render(rows: list[dict], fmt: str = "text") -> str:
  """rows as predict prints them: text (tab-separated), json or csv."""
  if fmt == "json":
    return json.dumps(rows, indent=2) + "\n"
  if fmt == "csv":
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", "rank", "class", "probability"])
    for r in rows:
      for rank, t in enumerate(r["top"], 1):
        writer.writerow([r["image"], rank, t["class"], f"{t['probability']:.6g}"])
    return out.getvalue()
  return "".join(r["image"] + "".join(f"\t{t['class']}\t{t['probability']:.4f}"
                                      for t in r["top"]) + "\n" for r in rows)
