"""The speedrun recipe as a config: experiments.perf.speedrun times it through digitjax's own
trainer (the command's output and JSON, a seed's accuracy reproducible, no compilation
while seeds are timed), digitjax.main trains configs/speedrun_mnist.py, PyTorch's
one-cycle schedule and init, and usage errors."""
import json
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, needs_mnist
from digitjax import config_files, models, optim, steps
from experiments.perf import speedrun

CONFIG = str(ROOT / "configs" / "speedrun_mnist.py")


@needs_mnist
def test_speedrun_prints_seeds_and_summary_and_writes_json(tmp_path, capsys):
  out = tmp_path / "speedrun.json"
  r = speedrun.main(["--config", CONFIG, "--seeds", "2", "--limit", "2000",
                     "--target", "50", "--json", str(out)])
  text = capsys.readouterr().out
  assert "compile:" in text and "seed 0: test accuracy" in text and "seed 1:" in text
  assert "1 Trainer.train_block call(s) of 7 steps" in text  # 2,000 // 256: one program
  assert "mean over 2 seed(s)" in text and "at or above 50.0%" in text
  saved = json.loads(out.read_text())
  assert {"seconds", "accuracy", "compile_seconds", "device", "loop"} <= set(saved)
  assert len(saved["seconds"]) == len(saved["accuracy"]) == 2
  assert saved["compile_seconds"] > 0 and all(s > 0 for s in saved["seconds"])
  assert saved["compiles_during_seeds"] == 0  # compiled ahead: the seeds time no compiler
  assert all(a > 40 for a in saved["accuracy"])  # 7 steps on 2,000 images (56-67%); chance 10
  assert saved["accuracy"] == r["accuracy"] and r["train_images"] == 2000


@needs_mnist
def test_the_same_seed_gives_the_same_accuracy():
  config, problems = speedrun.load_config(CONFIG)
  assert not problems
  run = speedrun.place(config, speedrun.load_data(config, "test", 1000))
  speedrun.compile_run(run)
  first, again, other = (speedrun.time_seed(run, s)[0] for s in (3, 3, 4))
  assert first == again
  assert 20 < first <= 100 and 20 < other <= 100
  assert run.trainer.seeds == [4]


@needs_mnist
def test_digitjax_main_trains_the_speedrun_config(tmp_path):
  """The recipe through `python -m digitjax.main`: one epoch, no validation (no val
  figures anywhere), the last epoch tested."""
  r = subprocess.run(
      [sys.executable, "-m", "digitjax.main", f"--config={CONFIG}",
       "--config.dataset.max_train_examples=1024", "--config.dataset.max_test_examples=500",
       f"--workdir={tmp_path}"], capture_output=True, text=True, cwd=ROOT, timeout=600)
  assert r.returncode == 0, r.stderr
  assert "Epoch 1/1 " in r.stdout and "val_loss" not in r.stdout, r.stdout
  assert "Test (best epoch 1): " in r.stdout
  history = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert len(history) == 1 and "val_loss" not in history[0] and history[0]["loss"] > 0
  results = json.loads((tmp_path / "results.json").read_text())
  assert "val_accuracy" not in results and results["best_epoch"] == 1
  assert results["checkpoint_step"] == 4 and results["test_accuracy"] > 0.2  # 1024 // 256
  assert (tmp_path / "history.png").exists()


def test_work_is_three_forward_passes_per_training_image():
  """XLA's count of a seed's work against the net's multiply-adds: forward, input
  gradient and weight gradient per training image (the first conv has no input
  gradient), one forward per test image."""
  config, _ = speedrun.load_config(CONFIG)
  conv1, conv2 = 24 * 24 * 24 * 25, 10 * 10 * 32 * 9 * 24  # output positions x taps x cin
  forward = 2 * (conv1 + conv2 + 800 * 256 + 256 * 10)
  expected = (59_904 * (3 * forward - 2 * conv1) + 10_000 * forward) / 1e9  # 234 batches
  assert 0.95 * expected < speedrun.work_gflop(config, 60_000, 10_000) < 1.1 * expected


def torch_onecycle(total, peak, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
  """torch.optim.lr_scheduler.OneCycleLR's learning rates for steps 0..total-1
  (anneal_strategy 'cos', two phases), transcribed from its get_lr in float64."""
  initial = peak / div_factor
  phases = [(float(pct_start * total) - 1, initial, peak),
            (total - 1, peak, initial / final_div_factor)]
  rates = []
  for step in range(total):
    start_step = 0.0
    for i, (end_step, start_lr, end_lr) in enumerate(phases):
      if step <= end_step or i == len(phases) - 1:
        pct = (step - start_step) / (end_step - start_step)
        rates.append(end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1))
        break
      start_step = end_step
  return rates


@pytest.mark.parametrize("total,pct_start", [(234, 0.3), (235, 0.3), (100, 0.25), (7, 0.3)])
def test_onecycle_is_pytorchs_formula(total, pct_start):
  ours = optim.onecycle(total, 0.01, pct_start, 25.0, 1e4)
  got = [float(ours(s)) for s in range(total)]
  np.testing.assert_allclose(got, torch_onecycle(total, 0.01, pct_start), rtol=2e-5,
                             atol=1e-9)  # float32
  assert float(ours(total + 5)) == pytest.approx(got[-1])  # past the end: the last rate


def test_onecycle_is_pytorchs():
  torch = pytest.importorskip("torch")
  total, peak = 234, 0.01
  p = torch.nn.Parameter(torch.zeros(1))
  opt = torch.optim.Adam([p], lr=peak)
  sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak, total_steps=total,
                                              cycle_momentum=False)
  want = []
  for _ in range(total):
    want.append(opt.param_groups[0]["lr"])
    opt.step()
    sched.step()
  ours = optim.onecycle(total, peak, 0.3, 25.0, 1e4)
  got = [float(ours(s)) for s in range(total)]
  np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-9)  # float32


def test_the_config_is_the_recipe():
  """The speedrun's fields reach the optimizer, the schedule and the model's input."""
  c = config_files.from_file(CONFIG)
  tx = optim.make(c, 234)
  g = {"w": jnp.array([0.5, -2.0])}
  updates, _ = tx.update(g, tx.init(g), g)  # Adam's first step: -lr(0) * g/(|g| + eps)
  np.testing.assert_allclose(updates["w"], -0.01 / 25 * g["w"] / (jnp.abs(g["w"]) + 1e-8),
                             rtol=1e-5)
  model = models.build(c, 10)
  x = jnp.full((1, 28, 28, 1), 0.1307)  # MNIST's mean pixel normalises to 0
  forward = jax.jit(lambda v, x: model.apply(v, x, capture_intermediates=True,
                                             mutable=["intermediates"])[1])
  normalised = forward(jax.jit(model.init)(jax.random.key(0), x), x)  # op by op: ~25 s
  np.testing.assert_allclose(
      normalised["intermediates"]["00_rescaling"]["__call__"][0], 0.0, atol=1e-6)


@pytest.mark.parametrize("init", ["keras", "torch"])
def test_torch_init_draws_pytorchs_bounds_and_keras_init_draws_nothing_more(init):
  c = config_files.from_file(CONFIG)
  model = models.build(c, 10)
  key = jax.random.key(7)
  state = jax.jit(lambda k: steps.create_train_state(  # jitted, as the Trainer runs it
      model, optim.make(c, 10), optim.plateau(c), (28, 28, 1), k, init))(key)
  keras = jax.jit(lambda k: model.init({"params": k}, jnp.zeros((1, 28, 28, 1)),
                                      train=False))(key)["params"]
  for name, layer in state.params.items():
    fan_in = np.prod(layer["kernel"].shape[:-1])
    if init == "keras":  # the layers' own draw, unchanged
      np.testing.assert_array_equal(layer["kernel"], keras[name]["kernel"])
      assert not np.any(layer["bias"])
    else:  # uniform in +-1/sqrt(fan_in), biases too
      bound = 1 / np.sqrt(fan_in)
      kernel, bias = np.abs(layer["kernel"]), np.abs(layer["bias"])
      assert kernel.max() <= bound and kernel.max() > 0.9 * bound  # >= 250 draws each
      assert bias.max() <= bound and bias.min() > 0


@pytest.mark.parametrize("args,message", [
    (["--seeds", "0"], "--seeds: 0 is below the minimum, 1"),
    (["--config", "configs/nosuch.py"], "--config: no such file"),
    (["--loop", "steps"], "unrecognized arguments: --loop steps"),
])
def test_bad_arguments_are_usage_errors(args, message, capsys):
  with pytest.raises(SystemExit) as exit_:
    speedrun.main(args)
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("usage: python -m experiments.perf.speedrun") and message in err


def test_a_config_of_several_seeds_is_refused(tmp_path, capsys):
  path = tmp_path / "several.py"
  path.write_text("from digitjax import config_files\n"
                  "def get_config():\n"
                  f"  c = config_files.from_file({CONFIG!r})\n"
                  "  c.num_seeds = 2\n"
                  "  return c\n")
  with pytest.raises(SystemExit) as exit_:
    speedrun.main(["--config", str(path)])
  assert exit_.value.code == 2
  assert "config.num_seeds=2: the speedrun times one seed at a time" in capsys.readouterr().err
