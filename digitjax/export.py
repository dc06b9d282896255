"""Exports that run without digitjax: a jax.export program, or a TensorFlow SavedModel.

  from digitjax import export
  export.to_jax("runs/tiny", "tiny.npz")          # needs jax and numpy to run, no digitjax
  export.to_savedmodel("runs/tiny", "tiny_tf")    # needs TensorFlow alone (no jax either)

  python -m digitjax.main --mode=export --workdir=runs/tiny --export_to=tiny.npz
  python -m digitjax.main --mode=export --workdir=runs/tiny --export_to=tiny_tf \
      --export_format=savedmodel

Both compute what Model.predict computes after Model.prepare: float32 images (N, H, W, C)
in 0-1 at the model's input shape (uint8 divided by 255, resized beforehand) in, class
probabilities (N, classes) out, for any N. digitjax.inference.export's msgpack file is the
other kind of export: parameters for digitjax.load, so it needs digitjax to run.

Why the weights travel beside the program and not inside it: jax.export folds closed-over
arrays into the StableHLO as constants, which grows the program by the model's size
(VGG16's 0.5 GB) and re-embeds them on every re-export; as arguments they stay plain
arrays (jax's own advice). The .npz holds the serialized program under `program`, a JSON
record under `meta` (class names, input shape, the run's config) and one array per weight,
named by its path (`params/01_dense/kernel`); the program takes those weights as one dict.
The SavedModel holds its weights as tf.Variables and the program as jax2tf's
XlaCallModule op (native serialization, the only mode jax2tf has left), so the TensorFlow
that serves it must know that op and the program's version (tested with TensorFlow 2.21);
TFLite and TF.js converters do not take it.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

from digitjax import inference
from digitjax.errors import UserError

FORMAT = "digitjax-jax-export-1"
FORMATS = ("jax", "savedmodel", "msgpack")
# lowered for each, so the same file runs on a CPU, an NVIDIA or AMD GPU, or a TPU
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def _model(source, which: str, seed: int | None) -> inference.Model:
  """source as a Model: a Model already, a workdir, or a file inference.export wrote."""
  return source if isinstance(source, inference.Model) else inference.load(source, which, seed)


def weights(model: inference.Model) -> dict[str, np.ndarray]:
  """The model's params and batch_stats as one flat dict, keyed by their path."""
  import jax

  leaves = jax.tree_util.tree_flatten_with_path(model.variables)[0]
  return {jax.tree_util.keystr(path, simple=True, separator="/"): np.asarray(leaf)
          for path, leaf in leaves}


def probabilities_fn(model: inference.Model):
  """f(weights, images) -> probabilities: Model.predict's computation, with the weights as
  an argument (a flat dict, `weights`) rather than held by the model."""
  import jax

  treedef = jax.tree.structure(model.variables)
  keys = list(weights(model))  # in the order tree_flatten gives the leaves

  def probabilities(flat, images):
    variables = jax.tree.unflatten(treedef, [flat[k] for k in keys])
    return model._apply(variables, images)  # the very function predict calls
  return probabilities


def meta(model: inference.Model) -> dict:
  """What a user of the export needs besides the program: names, shapes, provenance."""
  return {"format": FORMAT, "class_names": list(model.class_names),
          "input_shape": list(model.input_shape), "dataset": model.config.dataset.name,
          "input": "float32 (N, H, W, C) in 0-1", "seed": model.seed,
          "source": model.source, "config": model.config.to_json_best_effort(sort_keys=True)}


def to_jax(source, path: str, which: str = "best", seed: int | None = None) -> str:
  """Writes the model as one .npz: its jax.export program (any batch size, lowered for
  PLATFORMS) and its weights; docs/using_models.md's "Exports" shows the loader, which
  needs only jax and numpy. Written whole or not at all. Returns path."""
  import jax

  _target(path, folder=False)
  model = _model(source, which, seed)
  flat = weights(model)
  batch, = jax.export.symbolic_shape("batch")
  spec = lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype)
  exported = jax.export.export(jax.jit(probabilities_fn(model)), platforms=PLATFORMS)(
      {k: spec(v) for k, v in flat.items()},
      jax.ShapeDtypeStruct((batch, *model.input_shape), np.float32))
  arrays = dict(flat, program=np.frombuffer(bytes(exported.serialize()), np.uint8),
                meta=np.array(json.dumps(meta(model))))

  def write(tmp):
    with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
      np.savez(f, **arrays)
  return _write(path, write, folder=False)


def to_savedmodel(source, path: str, which: str = "best", seed: int | None = None) -> str:
  """Writes the model as a TensorFlow SavedModel folder (jax2tf): its serving_default
  signature takes `images` (float32, (N, H, W, C), 0-1) and gives `probabilities`; the
  loaded object's `class_names` holds the classes. Returns path."""
  _target(path, folder=True)
  model = _model(source, which, seed)
  try:
    import tensorflow as tf
    from jax.experimental import jax2tf
  except ImportError as e:
    raise UserError(f"export to a SavedModel needs TensorFlow and jax2tf ({e}); pip "
                    "install tensorflow-cpu, or export with --export_format=jax.") from None
  h, w, c = model.input_shape
  module = tf.Module()
  module.model_weights = {k: tf.Variable(v, trainable=False, name=k.replace("/", "."))
                          for k, v in weights(model).items()}
  module.class_names = tf.Variable(list(model.class_names), trainable=False)
  convert = jax2tf.convert(probabilities_fn(model), with_gradient=False,
                           polymorphic_shapes=[None, f"(batch, {h}, {w}, {c})"],
                           native_serialization_platforms=PLATFORMS)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec((None, h, w, c), tf.float32, name="images")])
  def serve(images):
    return {"probabilities": convert(module.model_weights, images)}

  module.serve = serve
  return _write(path, lambda tmp: tf.saved_model.save(
      module, tmp, signatures={"serving_default": serve}), folder=True)


def export(source, path: str, fmt: str = "jax", which: str = "best",
           seed: int | None = None) -> str:
  """One of FORMATS: `jax` (to_jax), `savedmodel` (to_savedmodel) or `msgpack`
  (digitjax.inference.export: parameters for digitjax.load)."""
  if fmt not in FORMATS:
    raise UserError(f"export format {fmt!r}: choose one of {', '.join(FORMATS)}.")
  if fmt == "msgpack":
    if isinstance(source, inference.Model):
      raise UserError("a msgpack export is written from a workdir: "
                      "digitjax.inference.export(workdir, path).")
    return inference.export(source, path, which, seed)
  return (to_jax if fmt == "jax" else to_savedmodel)(source, path, which, seed)


def _target(path: str, folder: bool) -> str:
  """path, checked before any work: a file export is never written onto a folder, and
  a SavedModel never onto a file or into a folder that holds something (replacing it
  would delete what it holds)."""
  path = os.path.expanduser(os.fspath(path))
  path = path.rstrip(os.sep) or path  # "bn_tf/": the folder bn_tf
  if os.path.isdir(path) and (not folder or os.listdir(path)):
    raise UserError(f"export: {path} is a folder" + (" that is not empty" if folder else "")
                    + "; give a new " + ("folder" if folder else "file") + " to write, e.g. "
                    + os.path.join(path, "model" if folder else "model.npz") + ".")
  if folder and os.path.isfile(path):
    raise UserError(f"export: {path} is a file; a SavedModel is a folder: give a new one.")
  return path


def _write(path: str, write, folder: bool) -> str:
  """write(tmp) into path + '.tmp', then renamed onto path: the export appears whole or
  not at all."""
  path = _target(path, folder)
  tmp = path + ".tmp"
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write(tmp)
    if folder and os.path.isdir(path):
      os.rmdir(path)  # empty: checked above
    os.replace(tmp, path)
  except OSError as e:
    raise UserError(f"export: cannot write {path} ({e.strerror or e}); nothing was "
                    "written there.") from e
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp)
    elif os.path.exists(tmp):
      os.remove(tmp)
  return path
