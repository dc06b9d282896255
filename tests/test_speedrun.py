"""experiments.perf.speedrun on a slice of real MNIST: the command's output and JSON, that a
seed's accuracy is reproducible, the PyTorch one-cycle schedule, and usage errors."""
import json

import jax
import numpy as np
import pytest

from conftest import ROOT, needs_mnist
from experiments.perf import speedrun

CONFIG = str(ROOT / "configs" / "speedrun_mnist.py")


@needs_mnist
def test_speedrun_prints_seeds_and_summary_and_writes_json(tmp_path, capsys):
  out = tmp_path / "speedrun.json"
  r = speedrun.main(["--config", CONFIG, "--seeds", "2", "--limit", "2000",
                     "--target", "50", "--json", str(out)])
  text = capsys.readouterr().out
  assert "compile:" in text and "seed 0: test accuracy" in text and "seed 1:" in text
  assert "mean over 2 seed(s)" in text and "at or above 50.0%" in text
  saved = json.loads(out.read_text())
  assert {"seconds", "accuracy", "compile_seconds", "device"} <= set(saved)
  assert len(saved["seconds"]) == len(saved["accuracy"]) == 2
  assert saved["compile_seconds"] > 0 and all(s > 0 for s in saved["seconds"])
  assert all(a > 40 for a in saved["accuracy"])  # 8 steps on 2,000 images (64-77%); chance 10
  assert saved["accuracy"] == r["accuracy"] and r["train_images"] == 2000


@needs_mnist
def test_the_same_seed_gives_the_same_accuracy():
  config, problems = speedrun.load_config(CONFIG)
  assert not problems
  arrays = jax.device_put(speedrun.load_data(config, "test", 1000))
  compiled, _ = speedrun.compile_run(config, arrays, speedrun.resolve(config))
  first, again, other = (speedrun.time_seed(compiled, s, arrays)[0] for s in (3, 3, 4))
  assert first == again
  assert 20 < first <= 100 and 20 < other <= 100


def test_work_is_three_forward_passes_per_training_image():
  """XLA's count of a seed's work against the net's multiply-adds: forward, input
  gradient and weight gradient per training image (the first conv has no input
  gradient), one forward per test image."""
  config, _ = speedrun.load_config(CONFIG)
  conv1, conv2 = 24 * 24 * 24 * 25, 10 * 10 * 32 * 9 * 24  # output positions x taps x cin
  forward = 2 * (conv1 + conv2 + 800 * 256 + 256 * 10)
  expected = (60_000 * (3 * forward - 2 * conv1) + 10_000 * forward) / 1e9
  assert 0.95 * expected < speedrun.work_gflop(config, 60_000, 10_000) < 1.1 * expected


def test_onecycle_is_pytorchs():
  torch = pytest.importorskip("torch")
  total, peak = 235, 0.01
  p = torch.nn.Parameter(torch.zeros(1))
  opt = torch.optim.Adam([p], lr=peak)
  sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak, total_steps=total,
                                              cycle_momentum=False)
  want = []
  for _ in range(total):
    want.append(opt.param_groups[0]["lr"])
    opt.step()
    sched.step()
  ours = speedrun.onecycle(total, peak, 0.3, 25.0, 1e4)
  got = [float(ours(s)) for s in range(total)]
  np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-9)  # float32


@pytest.mark.parametrize("args,message", [
    (["--seeds", "0"], "--seeds: 0 is below the minimum, 1"),
    (["--config", "configs/nosuch.py"], "--config: no such file"),
])
def test_bad_arguments_are_usage_errors(args, message, capsys):
  with pytest.raises(SystemExit) as exit_:
    speedrun.main(args)
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("usage: python -m experiments.perf.speedrun") and message in err
