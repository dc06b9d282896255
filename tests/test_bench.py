"""The benchmark's machinery: vmapped seeds equal sequential runs; FLOP counting."""
import jax
import numpy as np
import pytest

from conftest import needs_mnist
from experiments.perf import bench, seed_timing


@pytest.mark.parametrize("name,hidden,dropout", [("perceptron", None, 0.0),
                                                 ("mlp", (32, 16), 0.2)])
def test_vmapped_seeds_equal_sequential_runs(name, hidden, dropout):
  c = bench.model_config("perceptron" if name == "perceptron" else "keras_mlp", 32)
  if hidden:
    c.model.hidden_units, c.model.dropout = hidden, dropout
  images, labels = bench.synthetic(256)
  images, labels = jax.device_put(images), jax.device_put(labels)
  trainers = seed_timing.seed_trainers(c, 3, len(labels) // 32)
  vstate = seed_timing.run_vmapped(trainers, images, labels, epoch=1, steps=4)
  sequential = seed_timing.run_sequential(trainers, images, labels, epoch=1, steps=4)
  for k, s in enumerate(sequential):
    assert int(s.step[0]) == int(vstate.step[k]) == 4
    for a, b in zip(jax.tree.leaves(s.params), jax.tree.leaves(vstate.params)):
      np.testing.assert_allclose(b[k], a[0], rtol=1e-5, atol=1e-6)
  # the seeds really differ (own init, data order and dropout keys)
  first = jax.tree.leaves(vstate.params)[0]
  assert not np.allclose(first[0], first[1])


def test_counted_flops_match_the_published_counts():
  from digitjax import train
  flops = {n: bench.counted_flops(train.Trainer(bench.model_config(n, 128), 1))
           for n in ("keras_mlp", "keras_cnn")}
  assert flops["keras_mlp"] == pytest.approx(4.01e6, rel=1e-3)   # ../shared/BENCHMARKS.md
  assert flops["keras_cnn"] == pytest.approx(71.95e6, rel=1e-3)


def test_bench_times_blocks_of_steps_per_dispatch(tmp_path):
  """--dispatch K adds a row timed the way config.steps_per_dispatch=K trains (blocks of
  K steps in one lax.scan, the last block shorter) and its speed ratio to one per call."""
  out = tmp_path / "bench.json"
  r = bench.main(["--models", "keras_mlp", "--steps", "6", "--repeats", "1", "--seeds", "0",
                  "--dispatch", "4", "--out", str(out)])
  models = [row["model"] for row in r["rows"]]
  assert models == ["keras_mlp", "keras_mlp (4 per dispatch)"]
  assert [row["dispatch"] for row in r["rows"]] == [1, 4]
  assert all(row["epoch_s"] > 0 and row["steps_timed"] == 6 for row in r["rows"])
  assert r["dispatch_speedups"]["keras_mlp"] == pytest.approx(
      r["rows"][0]["epoch_s"] / r["rows"][1]["epoch_s"])
  assert out.exists()


def test_unknown_model_is_a_usage_error(capsys):
  with pytest.raises(SystemExit) as exit_:
    bench.main(["--models", "keras_cnn,nosuch"])
  assert exit_.value.code == 2
  assert "--models: unknown nosuch; choose from keras_mlp" in capsys.readouterr().err


@needs_mnist
def test_bench_speedrun_times_digitjax_and_pytorch_side_by_side():
  """--compare's speedrun: the same recipe in both frameworks, seconds and accuracy per
  seed, and the ratio of the medians (here on a 1,000-image slice)."""
  pytest.importorskip("torch")
  r = bench.bench_speedrun(2, limit=1000)
  assert len(r["seconds"]) == len(r["torch_seconds"]) == 2
  assert r["train_images"] == 1000 and r["compile_s"] > 0
  assert all(20 < a <= 100 for a in r["accuracy"] + r["torch_accuracy"])  # chance: 10
  assert r["ratio"] == pytest.approx(np.median(r["torch_seconds"]) / np.median(r["seconds"]))
  assert "torch/ours" in bench._fmt_speedrun(r)
