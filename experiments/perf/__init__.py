"""How fast digitjax trains, against what, and where the time goes (experiments/BENCH.md).

  bench.py           python -m experiments.perf.bench: the reports' models, epoch seconds
                     against PyTorch and Keras in one process
  speedrun.py        python -m experiments.perf.speedrun: MNIST to 99% in one epoch
  epoch_cost.py      python -m experiments.perf.epoch_cost: what an epoch of a report row
                     costs here, to plan heavy rows
  conv_probe.py      python -m experiments.perf.conv_probe: each conv form's forward and
                     gradients, per layer shape
  seed_timing.py     K seeds vmapped in one program against K runs (bench, tests)
  torch_keras.py     the benchmarked models in eager PyTorch and Keras 3 (bench --compare)
  speedrun_vs_torch.py  the speedrun in digitjax and eager PyTorch, alternating (--compare)
  peak.py            the device's float32 matmul rate, the peak bench and speedrun quote
  reference_layers.py  flax's stock max-pool, dropout and conv (bench --reference-layers)
  bench_cpu*.json    the runs BENCH.md quotes
"""
import os

from digitjax import reporting


def write_result(path: str, result: dict) -> None:
  """Writes a measurement's JSON (its folder made) and says where: bench and speedrun."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  reporting.write_json(path, result)
  print(f"JSON: {path}")
