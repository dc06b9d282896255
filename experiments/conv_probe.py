"""Where a convolution's training time goes, per form, inside a lax.scan (as digitjax trains).

  python -m experiments.conv_probe [--iters 5] [--shapes speedrun,cnn_bn,keras_cnn]
  python -m experiments.conv_probe --train cnn_bn --batch 64 --steps 200 --runs 3
  python -m experiments.conv_probe --winograd

For each convolution of the MNIST speedrun and the report CNNs, times the forward pass,
the input gradient and the kernel gradient of each conv form (digitjax.models.layers:
"xla" = lax.conv and its autodiff, "matmul" = im2col, "mixed" = lax.conv forward with
its own backward), each as the body of a lax.scan over `--iters` batches, and prints
milliseconds per iteration. It is the probe behind experiments/BENCH.md's "mixed conv"
table: compare within one run, since the machine's load moves absolute times.

With --train MODEL it times whole training epochs instead (experiments.bench's model
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


def ms_per_iter(piece, xs, w, g, repeats: int = 2) -> float:
  """Median milliseconds of one scan iteration running `piece` (compiled once)."""
  body = lambda c, x: (c + jnp.sum(piece(x, w, g)), None)
  run = jax.jit(lambda xs, w, g: lax.scan(body, jnp.float32(0), xs)[0])
  run(xs, w, g).block_until_ready()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    run(xs, w, g).block_until_ready()
    times.append(time.perf_counter() - t0)
  return 1e3 * float(np.median(times)) / len(xs)


def _inputs(batch, size, cin, k, cout, iters):
  """Random batches xs, kernel w and output gradient g of one conv shape."""
  keys = jax.random.split(jax.random.key(0), 3)
  xs = jax.random.normal(keys[0], (iters, batch, size, size, cin))
  w = 0.1 * jax.random.normal(keys[1], (k, k, cin, cout))
  g = jax.random.normal(keys[2], (batch, size - k + 1, size - k + 1, cout))
  return xs, w, g


def probe(label, batch, size, cin, k, cout, iters: int) -> list[str]:
  xs, w, g = _inputs(batch, size, cin, k, cout, iters)
  rows = []
  for piece in ("forward", "input grad", "kernel grad"):
    if piece == "input grad" and cin == 1:
      continue  # a first layer's input gradient is never computed
    cells = [f"{ms_per_iter(parts(conv)[piece], xs, w, g):.2f}" for conv in FORMS.values()]
    rows.append(f"| {label} (batch {batch}) | {piece} | " + " | ".join(cells) + " |")
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
      xs, w, _ = _inputs(batch, size, cin, k, cout, iters)
      cells = [f"{ms_per_iter(lambda x, w, g: f(x, w), xs, w, None):.2f}"
               for f in forms.values()]
      rows.append(f"| {family} {label} (batch {batch}) | forward | " + " | ".join(cells) + " |")
  return rows


def train_ab(model: str, batch: int, steps: int, runs: int, forms=("matmul", "mixed")):
  """Median epoch seconds of `model` per conv form, alternated; the first form is 1.00x."""
  from experiments import bench

  images, labels = bench.synthetic()
  seconds = {f: [] for f in forms}
  for _ in range(runs):
    for form in forms:
      config = bench.model_config(model, batch)
      config.model.conv_impl = form
      row = bench.bench_flax(model, config, images, labels, steps, 1, dispatch=100)
      seconds[form].append(row["epoch_s"])
      print(f"{model} {form}: epoch {row['epoch_s']:.1f} s", flush=True)
  base = float(np.median(seconds[forms[0]]))
  for form, s in seconds.items():
    print(f"{model} batch {batch}, {form}: median {np.median(s):.1f} s per epoch, "
          f"{base / np.median(s):.2f}x")


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--iters", type=int, default=5, help="scan length (batches)")
  p.add_argument("--shapes", default=",".join(SHAPES), help="of " + ", ".join(SHAPES))
  p.add_argument("--train", choices=("cnn_bn", "keras_cnn"),
                 help="time whole epochs of this model per conv form instead")
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--steps", type=int, default=200, help="--train: steps timed per epoch")
  p.add_argument("--runs", type=int, default=3, help="--train: alternated runs per form")
  p.add_argument("--winograd", action="store_true",
                 help="time the 3x3 convs' forward: lax.conv, im2col, Winograd F(2x2, 3x3)")
  a = p.parse_args(argv)
  if a.train:
    return train_ab(a.train, a.batch, a.steps, a.runs)
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
