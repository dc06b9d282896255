"""Using a trained model: load a workdir (or an exported file) and predict.

  import digitjax
  model = digitjax.load("runs/tiny")            # best checkpoint; which="latest", seed=k
  probs = model.predict(images)                  # uint8 0-255 or float 0-1 -> (N, classes)
  digitjax.inference.export("runs/tiny", "tiny.msgpack")   # params + config, one file
  digitjax.load("tiny.msgpack").predict(images)  # the same probabilities

The weights come from the workdir's checkpoints exactly as training saved them and the
model from its config.json, so predict's argmax is what `--mode=eval` scores.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any

import numpy as np

from digitjax.errors import UserError

EXPORT_FORMAT = "digitjax-params-1"


def _tuples(x):
  """config.json's lists back to the tuples the config schema uses (hidden_units, ...)."""
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  if isinstance(x, list):
    return tuple(_tuples(v) for v in x)
  return x


def config_from_json(text: str):
  """The config a config.json records (its provenance record left out), with any field
  the schema gained since at its default: what that run ran with (a new field's default
  keeps the old behaviour), so older runs still build their optimizer and model."""
  import ml_collections
  from digitjax import config as config_lib

  record = json.loads(text)
  record.pop(config_lib.PROVENANCE, None)
  schema = json.loads(config_lib.get_config().to_json_best_effort())
  return ml_collections.ConfigDict(_tuples(_with_defaults(record, schema)))


def _with_defaults(record: dict, defaults: dict) -> dict:
  out = dict(record)
  for key, value in defaults.items():
    if key not in out:
      out[key] = value
    elif isinstance(value, dict) and isinstance(out[key], dict):
      out[key] = _with_defaults(out[key], value)
  return out


def recorded_config(workdir: str):
  """The config a workdir's training recorded (its config.json), provenance left out."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    what = "does not exist" if not os.path.exists(workdir) else "holds no config.json"
    raise UserError(f"{workdir} {what}: it is not a trained run. Point it at a workdir "
                    "made by `python -m digitjax.main --config=...` or at a file "
                    "digitjax.inference.export wrote.")
  try:
    with open(path) as f:
      return config_from_json(f.read())
  except (OSError, ValueError) as e:
    raise UserError(f"{path} is unreadable ({e}).") from e


@dataclasses.dataclass(repr=False)
class Model:
  """A trained model: predict(images) -> class probabilities (N, classes) as numpy."""
  config: Any
  module: Any  # the Flax module (models.build)
  variables: dict  # {"params": ..., "batch_stats": ...}, one seed's, on the host
  class_names: tuple[str, ...]
  seed: int
  source: str  # the workdir's checkpoint or the exported file it came from

  def __repr__(self) -> str:
    """One line: what it is and where it came from (not its config and every weight)."""
    import jax
    params = sum(int(np.size(x)) for x in jax.tree.leaves(self.variables.get("params", {})))
    return (f"Model({self.config.name!r}, {self.config.model.name}, seed {self.seed}, "
            f"input {'x'.join(map(str, self.input_shape))}, {len(self.class_names)} "
            f"classes, {params:,} parameters, from {self.source})")

  @property
  def input_shape(self) -> tuple[int, int, int]:
    from digitjax import data
    return data.image_shape(self.config)

  @functools.cached_property
  def _apply(self):
    import jax
    from digitjax import steps

    def probs(variables, x):
      logits = self.module.apply(variables, x, train=False)
      return steps.probabilities(logits, self.config.model.output_activation)
    return jax.jit(probs)

  def prepare(self, images) -> np.ndarray:
    """images as the model sees them: float32 (N, H, W, C) in [0, 1], resized as the
    config's data were."""
    x = np.asarray(images)
    h, w, c = self.input_shape
    native = _native_shape(self.config)
    _check_values(x)
    if x.ndim == 2 and c == 1:
      x = x[None, ..., None]
    elif x.ndim == 3 and c == 1 and x.shape[-1] != 1:
      x = x[..., None]  # (N, H, W) grayscale
    if x.ndim == 3:
      x = x[None]
    want = "x".join("H" if d is None else str(d) for d in native)
    if x.ndim != 4 or x.shape[-1] != c:
      raise UserError(f"images of shape {tuple(np.shape(images))} do not fit this model, "
                      f"which takes {want} images (N,H,W,C), (H,W,C)"
                      + (" or without the channel axis" if c == 1 else "") + ".")
    resizes = bool(self.config.dataset.image_size)
    if not resizes and x.shape[1:3] != (h, w):
      raise UserError(f"images of shape {tuple(np.shape(images))} do not fit this model, "
                      f"which takes {h}x{w}x{c} images.")
    if x.shape[1:3] == (h, w):
      return x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 \
          else x.astype(np.float32)
    # resized as data._read_tfds does: bilinear on 0-255 values, then cast (truncated)
    import jax
    scale = np.float32(1) if x.dtype == np.uint8 else np.float32(255)
    y = jax.image.resize(x.astype(np.float32) * scale, (len(x), h, w, c), "linear",
                         antialias=False)
    return np.floor(np.clip(np.asarray(y), 0, 255)) / np.float32(255)

  def predict(self, images, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities (N, classes), float32 numpy, for uint8 (0-255) or float (0-1)
    images of shape (N,H,W,C) or (H,W,C); grayscale also without the channel axis."""
    x = self.prepare(images)
    bs = batch_size or self.config.eval_batch_size or 256
    out = [np.asarray(self._apply(self.variables, x[i:i + bs]))
           for i in range(0, len(x), bs)]
    return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)

  def classify(self, images) -> list[tuple[str, float]]:
    """(class name, probability) of each image's most likely class."""
    p = self.predict(images)
    return [(self.class_names[i], float(p[n, i])) for n, i in enumerate(p.argmax(-1))]


def _check_values(x: np.ndarray) -> None:
  """The input contract: uint8 in 0-255, or float in 0-1 and finite. Float pixels in
  0-255 would saturate every image to one class, and a NaN would give NaN probabilities,
  both with no error."""
  if x.dtype == np.uint8:
    return
  if not np.issubdtype(x.dtype, np.floating):
    raise UserError(f"images must be uint8 (0-255) or float (0-1), not {x.dtype}; "
                    "convert them, e.g. images.astype(np.uint8) for 0-255 values.")
  bad = int(np.size(x) - np.isfinite(x).sum())
  if bad:
    raise UserError(f"images hold {bad} NaN or infinite value(s); every pixel must be a "
                    "number in 0-1 (float) or 0-255 (uint8).")
  lo, hi = (x.min(), x.max()) if x.size else (0, 0)
  if lo < 0 or hi > 1:
    hint = (" They look like 0-255 values: divide by 255, or pass them as uint8."
            if lo >= 0 and hi <= 255 else "")
    raise UserError(f"float images must lie in 0-1; these span {lo:g} to {hi:g}.{hint}")


def _native_shape(config):
  from digitjax import data
  h, w, c = data.DATASETS[config.dataset.name].image_shape
  size = config.dataset.image_size
  return (size, size, c) if size and h is None else (h, w, c)


def _seed_index(config, seed: int | None) -> int:
  seeds = [config.seed + k for k in range(config.num_seeds)]
  if seed is None:
    return 0
  if seed not in seeds:
    raise UserError(f"seed={seed}: this run trained seed{'s' if len(seeds) > 1 else ''} "
                    f"{', '.join(map(str, seeds))}.")
  return seeds.index(seed)


def _build(config, variables, seed, source) -> Model:
  """The Model, once its config is valid and its model takes these very weights: a
  config.json or export edited afterwards (another model family, another width) would
  otherwise fail deep in Flax, or predict with a model the weights were not made for."""
  import jax
  from digitjax import data, models, validation

  errors = validation.validate(config)
  if errors:
    raise UserError(f"{source}: its config is not a valid one ({errors[0]}); was it "
                    "edited after training?")
  info = data.DATASETS[config.dataset.name]
  module = models.build(config, info.num_classes)
  x = np.zeros((1, *data.image_shape(config)), np.float32)
  try:
    want = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  except Exception as e:  # noqa: BLE001 - shape errors surface as many types
    raise UserError(f"{source}: its config's model {config.model.name!r} cannot be built "
                    f"({str(e).splitlines()[0][:150]}).") from None
  def shapes(tree):
    leaves = jax.tree_util.tree_flatten_with_path(
        {k: tree.get(k, {}) for k in ("params", "batch_stats")})[0]
    return {jax.tree_util.keystr(path): np.shape(leaf) for path, leaf in leaves}

  if shapes(want) != shapes(variables):
    raise UserError(f"{source}: its weights do not fit its config's model "
                    f"({config.model.name!r}): the config was edited after training, or "
                    "the weights come from another run.")
  return Model(config=config, module=module, variables=variables,
               class_names=info.class_names, seed=seed, source=source)


def load(path: str, which: str = "best", seed: int | None = None) -> Model:
  """A trained model from a workdir (its config.json and `which` checkpoint, 'best' or
  'latest'; `seed` picks one seed of a multi-seed run, default the first) or from a file
  that export() wrote. UserError if there is nothing to load."""
  import jax
  from digitjax import evaluate

  path = os.fspath(path)
  if os.path.isfile(path):
    return _load_export(path, seed)
  if which not in evaluate.WHICH:
    raise UserError(f"which={which!r}: choose 'best' (the best validation checkpoint) or "
                    "'latest' (the newest saved state).")
  config = recorded_config(path)
  k = _seed_index(config, seed)
  _, state = evaluate.restore(path, config, which)
  variables = jax.tree.map(lambda a: np.asarray(jax.device_get(a))[k],
                           {"params": state.params, "batch_stats": state.batch_stats})
  return _build(config, variables, config.seed + k, f"{path} ({which} checkpoint)")


def export(workdir: str, path: str, which: str = "best", seed: int | None = None) -> str:
  """Writes one seed's params and batch_stats and the run's config to one msgpack file
  (flax.serialization), written whole or not at all; load(path) reads it. Returns path."""
  from flax import serialization

  model = load(workdir, which, seed)
  blob = serialization.msgpack_serialize({
      "format": EXPORT_FORMAT, "seed": model.seed,
      "config": model.config.to_json_best_effort(sort_keys=True),
      "variables": serialization.to_state_dict(model.variables)})
  path = os.path.expanduser(os.fspath(path))
  if os.path.isdir(path):
    raise UserError(f"export: {path} is a folder; give the file to write, e.g. "
                    f"{os.path.join(path, 'model.msgpack')}.")
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
      f.write(blob)
    os.replace(path + ".tmp", path)
  except OSError as e:
    if os.path.isfile(path + ".tmp"):
      os.remove(path + ".tmp")
    raise UserError(f"export: cannot write {path} ({e.strerror}); nothing was "
                    "written there.") from e
  return path


def _load_export(path: str, seed: int | None) -> Model:
  from flax import serialization

  try:
    with open(path, "rb") as f:
      blob = serialization.msgpack_restore(f.read())
    assert isinstance(blob, dict) and blob.get("format") == EXPORT_FORMAT
    config = config_from_json(blob["config"])
  except Exception as e:  # msgpack raises several types for a file of something else
    raise UserError(f"{path} is not a model digitjax.inference.export wrote.") from e
  if seed is not None and seed != blob["seed"]:
    raise UserError(f"seed={seed}: {path} holds seed {blob['seed']} only.")
  variables = {"params": blob["variables"].get("params", {}),
               "batch_stats": blob["variables"].get("batch_stats", {})}
  return _build(config, variables, int(blob["seed"]), path)
