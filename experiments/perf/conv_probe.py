"""Where a convolution's training time goes, per form, inside a lax.scan (as digitjax trains).

  python -m experiments.perf.conv_probe [--iters 5] [--shapes speedrun,cnn_bn,keras_cnn]
  python -m experiments.perf.conv_probe --train cnn_bn --batch 64 --steps 200 --runs 3
  python -m experiments.perf.conv_probe --winograd
  python -m experiments.perf.conv_probe --model configs/report_e.py:e5_googlenet_sgd
  python -m experiments.perf.conv_probe --train configs/report_e.py:e2_alexnet_sgd --steps 6 \
      --forms matmul,mixed,matmul,mixed --runs 1

For each convolution of the MNIST speedrun and the report CNNs, times the forward pass,
the input gradient and the kernel gradient of each conv form (digitjax.models.layers:
"xla" = lax.conv and its autodiff, "matmul" = im2col, "mixed" = lax.conv forward with
its own backward), each as the body of a lax.scan over `--iters` batches, and prints
milliseconds per iteration. It is the probe behind experiments/BENCH.md's "mixed conv"
table: compare within one run, since the machine's load moves absolute times.

With --model CONFIG it does the same for every conv of a config's model, one row per
layer shape at the config's batch and input size, with the count of layers of that shape
and each form's total (lax.conv's kernel gradient, 10-80x slower, only with --all-pieces).
A first layer's input gradient is never computed in training and is left out.

With --train MODEL (cnn_bn, keras_cnn or a config spec) it times whole training epochs instead (experiments.perf.bench's model
configs and step, blocks of 100 steps as digitjax.main runs them), each conv form in
turn, --runs times alternated in one process, and prints the median against "matmul".

With --winograd it times a candidate for the 3x3 convs, Winograd F(2x2, 3x3) written as
16 batched matmuls (2.25x fewer multiplies), against lax.conv's and im2col's forward
pass; the candidate lives here, not in digitjax.models.layers, until it wins.
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from digitjax.models import layers

FORMS = layers.CONVS  # model.conv_impl -> conv function
# name -> (batch, input height/width, input channels, kernel size, output channels)
SHAPES = {
    "speedrun": [("5x5 1->24", 256, 28, 1, 5, 24), ("3x3 24->32", 256, 12, 24, 3, 32)],
    "cnn_bn": [("3x3 16->32", 128, 26, 16, 3, 32), ("3x3 32->64", 128, 12, 32, 3, 64)],
    "keras_cnn": [("3x3 32->64", 128, 26, 32, 3, 64)],
}


def parts(conv):
  """The three pieces of a conv's training step, as functions of (x, w, g)."""
  return {
      "forward": lambda x, w, g: conv(x, w),
      "input grad": lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0],
      "kernel grad": lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0],
  }


def ms_per_iter(piece, xs, w, gs, repeats: int = 2) -> float:
  """Median milliseconds of one scan iteration running `piece` (compiled once). Each
  iteration has its own input and output gradient: the input gradient depends on the
  output gradient alone, and a loop-invariant one would be hoisted out of the scan."""
  body = lambda c, xg: (c + jnp.sum(piece(xg[0], w, xg[1])), None)
  run = jax.jit(lambda xs, w, gs: lax.scan(body, jnp.float32(0), (xs, gs))[0])
  run(xs, w, gs).block_until_ready()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    run(xs, w, gs).block_until_ready()
    times.append(time.perf_counter() - t0)
  return 1e3 * float(np.median(times)) / len(xs)


def _inputs(batch, size, cin, k, cout, iters, strides=(1, 1), padding="VALID"):
  """Random batches xs, kernel w and output gradients gs of one conv shape."""
  hw = (size, size) if isinstance(size, int) else tuple(size)
  keys = jax.random.split(jax.random.key(0), 3)
  xs = jax.random.normal(keys[0], (iters, batch, *hw, cin))
  w = 0.1 * jax.random.normal(keys[1], (k, k, cin, cout))
  out = jax.eval_shape(lambda x: layers.conv_xla(x, w, strides, padding), xs[0]).shape
  return xs, w, jax.random.normal(keys[2], (iters, *out))


def probe(label, batch, size, cin, k, cout, iters: int) -> list[str]:
  xs, w, g = _inputs(batch, size, cin, k, cout, iters)
  rows = []
  for piece in ("forward", "input grad", "kernel grad"):
    if piece == "input grad" and cin == 1:
      continue  # a first layer's input gradient is never computed
    cells = [f"{ms_per_iter(parts(conv)[piece], xs, w, g):.2f}" for conv in FORMS.values()]
    rows.append(f"| {label} (batch {batch}) | {piece} | " + " | ".join(cells) + " |")
  return rows


def model_convs(spec: str):
  """(batch, input shape, Counter of (input HWC, kernel HWIO, strides, padding)) of the
  convs a config's model runs in one training forward pass, recorded at layers.CONVS."""
  import collections
  from digitjax import data, models
  from experiments.reproduce import catalogue

  config = catalogue.load_config(spec)
  shape = data.image_shape(config)
  seen, forms = collections.Counter(), dict(layers.CONVS)

  def recording(conv):
    def call(x, kernel, strides=(1, 1), padding="VALID"):
      seen[(x.shape[1:], kernel.shape, tuple(strides), padding)] += 1
      return conv(x, kernel, strides, padding)
    return call

  layers.CONVS.update({name: recording(conv) for name, conv in forms.items()})
  try:
    model = models.build(config, 10)
    x = jnp.zeros((1, *shape))
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    variables = jax.eval_shape(lambda: model.init(rngs, x, train=False))
    seen.clear()  # init's own pass
    jax.eval_shape(lambda v: model.apply(v, x, train=True, rngs=rngs, mutable=True),
                   variables)
  finally:
    layers.CONVS.update(forms)
  return config.batch_size, tuple(shape), seen


def model_rows(spec: str, iters: int, all_pieces: bool = False) -> list[str]:
  """One row per conv shape of a config's model (ms per piece and form), then totals."""
  batch, image, seen = model_convs(spec)
  totals = {f: {"forward": 0.0, "input grad": 0.0, "kernel grad": 0.0} for f in FORMS}
  rows = []
  for (hwc, (k, _, cin, cout), strides, padding), n in seen.items():
    xs, w, gs = _inputs(batch, hwc[:2], cin, k, cout, iters, strides, padding)
    cells = []
    for form, conv in FORMS.items():
      piece_fns = parts(lambda x, w, conv=conv: conv(x, w, strides, padding))
      timed = []
      for piece, fn in piece_fns.items():
        skip = (piece == "input grad" and hwc == image) or (
            form == "xla" and piece == "kernel grad" and not all_pieces)
        timed.append(None if skip else ms_per_iter(fn, xs, w, gs))
        totals[form][piece] += n * (timed[-1] or 0.0)
      cells.append("/".join("-" if t is None else f"{t:.1f}" for t in timed))
    rows.append(f"| {'x'.join(map(str, hwc))} | {k}x{k}/{strides[0]} {padding} -> {cout} "
                f"| {n} | " + " | ".join(cells) + " |")
  rows.append("| total (ms a step) | | | " + " | ".join(
      "/".join(f"{v:.0f}" for v in t.values()) for t in totals.values()) + " |")
  return rows


def _winograd_input(rows):
  """B^T d along the leading axis of four 4-point rows (F(2x2, 3x3))."""
  d0, d1, d2, d3 = rows
  return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _winograd_output(rows):
  """A^T m along the leading axis of four rows: two outputs from four products."""
  m0, m1, m2, m3 = rows
  return [m0 + m1 + m2, m1 - m2 - m3]


def winograd_conv3x3(x, kernel):
  """A stride-1 VALID 3x3 NHWC x HWIO convolution by Winograd F(2x2, 3x3).

  Each 2x2 output tile comes from a 4x4 input tile: 16 products of (tiles, Cin) @
  (Cin, Cout) in one batched matmul instead of 36, the input and output transforms
  are additions of the tiles' 16 strided views.
  """
  n, h, w, cin = x.shape
  oh, ow = h - 2, w - 2
  th, tw = -(-oh // 2), -(-ow // 2)
  x = jnp.pad(x, ((0, 0), (0, 2 * th + 2 - h), (0, 2 * tw + 2 - w), (0, 0)))
  views = [[x[:, i : i + 2 * th - 1 : 2, j : j + 2 * tw - 1 : 2, :] for j in range(4)]
           for i in range(4)]
  cols = [_winograd_input(row) for row in views]  # cols[i][b]
  v = [_winograd_input([cols[i][b] for i in range(4)]) for b in range(4)]  # v[b][a]
  v = jnp.stack([v[b][a] for a in range(4) for b in range(4)]).reshape(16, -1, cin)
  g = jnp.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], x.dtype)
  u = jnp.einsum("ai,ijco,bj->abco", g, kernel, g).reshape(16, cin, -1)
  m = jnp.einsum("kpc,kco->kpo", v, u).reshape(4, 4, n, th, tw, -1)
  rows = [_winograd_output([m[a, b] for a in range(4)]) for b in range(4)]  # rows[b][y]
  out = [[_winograd_output([rows[b][y] for b in range(4)])[z] for z in range(2)]
         for y in range(2)]
  out = jnp.stack([jnp.stack(r, axis=3) for r in out], axis=2)  # (n, th, 2, tw, 2, o)
  return out.reshape(n, 2 * th, 2 * tw, -1)[:, :oh, :ow]


def winograd_rows(iters: int) -> list[str]:
  """Forward ms per scan iteration of each 3x3 conv: lax.conv, im2col, Winograd."""
  forms = {"xla": layers.conv_xla, "matmul": layers.conv_matmul,
           "winograd": winograd_conv3x3}
  rows = []
  for family, shapes in SHAPES.items():
    for label, batch, size, cin, k, cout in shapes:
      if k != 3:
        continue
      xs, w, gs = _inputs(batch, size, cin, k, cout, iters)
      cells = [f"{ms_per_iter(lambda x, w, g: f(x, w), xs, w, gs):.2f}"
               for f in forms.values()]
      rows.append(f"| {family} {label} (batch {batch}) | forward | " + " | ".join(cells) + " |")
  return rows


def _train_inputs(model: str, batch: int, steps: int):
  """(config maker, images, labels): bench's MNIST models, or a config spec's model on
  random uint8 images of its input shape, `steps` batches of its own batch size."""
  from digitjax import data
  from experiments.perf import bench
  from experiments.reproduce import catalogue

  if model in ("cnn_bn", "keras_cnn"):
    return (lambda: bench.model_config(model, batch)), *bench.synthetic()
  config = catalogue.load_config(model)
  rng = np.random.default_rng(0)
  n = config.batch_size * steps
  images = rng.integers(0, 256, (n, *data.image_shape(config)), dtype=np.uint8)
  classes = data.DATASETS[config.dataset.name].num_classes
  return (lambda: catalogue.load_config(model)), images, rng.integers(0, classes, n, np.int32)


def train_ab(model: str, batch: int, steps: int, runs: int, forms=("matmul", "mixed")):
  """Median epoch seconds of `model` per conv form, alternated; the first form is 1.00x."""
  from experiments.perf import bench

  make, images, labels = _train_inputs(model, batch, steps)
  seconds = {f: [] for f in forms}
  for _ in range(runs):
    for form in forms:
      config = make()
      config.model.conv_impl = form
      row = bench.bench_flax(model, config, images, labels, steps, 3, dispatch=100)
      seconds[form].extend(row["epoch_times"])
      print(f"{model} {form}: epochs {' '.join(f'{t:.2f}' for t in row['epoch_times'])} s",
            flush=True)
  base = float(np.median(seconds[forms[0]]))
  for form, s in seconds.items():
    print(f"{model}, {form}: median {np.median(s):.2f} s per epoch, "
          f"{base / np.median(s):.2f}x")


def main(argv=None):
  p = argparse.ArgumentParser(prog="python -m experiments.perf.conv_probe",
                              description=__doc__.splitlines()[0])
  p.add_argument("--iters", type=int, default=5, help="scan length (batches)")
  p.add_argument("--shapes", default=",".join(SHAPES), help="of " + ", ".join(SHAPES))
  p.add_argument("--train", help="time whole epochs per conv form instead: cnn_bn, "
                 "keras_cnn or a config spec (configs/report_e.py:e2_alexnet_sgd)")
  p.add_argument("--forms", default="matmul,mixed",
                 help="--train: the conv forms, in order (the first is 1.00x)")
  p.add_argument("--model", help="time every conv of this config's model, per layer shape")
  p.add_argument("--all-pieces", action="store_true",
                 help="--model: also time lax.conv's (slow) kernel gradient")
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--steps", type=int, default=200, help="--train: steps timed per epoch")
  p.add_argument("--runs", type=int, default=3, help="--train: alternated runs per form")
  p.add_argument("--winograd", action="store_true",
                 help="time the 3x3 convs' forward: lax.conv, im2col, Winograd F(2x2, 3x3)")
  a = p.parse_args(argv)
  if a.train:
    return train_ab(a.train, a.batch, a.steps, a.runs, tuple(a.forms.split(",")))
  if a.model:
    print(f"{a.model}: ms per batch, forward/input grad/kernel grad")
    print("| input | conv | layers | " + " | ".join(FORMS) + " |\n|---|---|---|"
          + "---|" * len(FORMS))
    print("\n".join(model_rows(a.model, a.iters, a.all_pieces)))
    return None
  if a.winograd:
    print("| conv | piece | xla ms | matmul ms | winograd ms |\n|---|---|---|---|---|")
    print("\n".join(winograd_rows(a.iters)))
    return None
  unknown = sorted(set(a.shapes.split(",")) - set(SHAPES))
  if unknown or a.iters < 1:
    p.error(f"--shapes: choose from {', '.join(SHAPES)}" if unknown else "--iters: >= 1")
  print("| conv | piece | " + " | ".join(f"{f} ms" for f in FORMS) + " |")
  print("|---|---|" + "---|" * len(FORMS))
  for family in a.shapes.split(","):
    for shape in SHAPES[family]:
      print("\n".join(probe(f"{family} {shape[0]}", *shape[1:], a.iters)), flush=True)


if __name__ == "__main__":
  main()
