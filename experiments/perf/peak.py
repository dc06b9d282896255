"""This device's float32 matmul rate: the peak that bench and speedrun measure work against.

One measurement, in one place: bench's "% of peak" and speedrun's roofline line divide by
the same figure. It is the fastest of `repeats` n x n x n products (after compiling and one
warm-up), not their median: a peak is what the device can do, and on a shared machine a
median measures the other work as much as the device. bench takes it before and after
its models and keeps the higher.
"""
from __future__ import annotations

import time


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
  """GFLOP/s of the fastest of `repeats` float32 n x n jnp.dot products (2 n^3 FLOPs each)
  of a random normal matrix."""
  import jax
  import jax.numpy as jnp

  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    dot(a, a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2.0 * n ** 3 / best / 1e9
