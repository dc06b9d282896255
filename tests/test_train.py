"""End-to-end behaviour: learning on a real MNIST subset; determinism, checkpoints and
resume on mock MNIST (600 random examples a split, the same for a seed)."""
import json
import os

import jax
import numpy as np
import pytest

from conftest import needs_mnist, tiny_config
from digitjax import checkpoints, data, main, callbacks, trainer as trainer_lib
from digitjax.errors import UserError


def _leaves_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@needs_mnist
def test_learns_mnist_subset(tmp_path):
  """5k real training images, B3's one-conv CNN: above 95% on the 10,000 real test images."""
  c = tiny_config(**{"model.name": "cnn_single", "dataset.max_train_examples": 5000,
                     "dataset.max_test_examples": 0, "optimizer.name": "momentum",
                     "optimizer.learning_rate": 0.05, "batch_size": 32, "num_epochs": 5})
  r = main.run(c, str(tmp_path))
  assert r["test_accuracy"] > 0.95, r["test_accuracy"]
  assert r["epochs_run"] == 5
  for name in ("config.json", "summary.txt", "metrics.jsonl", "history.png",
               "confusion_matrix.png", "results.json"):
    assert (tmp_path / name).exists(), name
  assert any(f.startswith("events") for f in os.listdir(tmp_path / "tb"))
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["test_accuracy"] == r["test_accuracy"]
  assert len(saved["per_class"]) == 10 and sum(sum(r) for r in saved["confusion_matrix"]) == 10000
  history = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
  assert history[-1]["loss"] < history[0]["loss"]


def test_eval_mode_reproduces_recorded_test_accuracy(mock_mnist, tmp_path):
  c = tiny_config()
  trained = main.run(c, str(tmp_path))
  evaluated = main.run(c, str(tmp_path), mode="eval")
  assert evaluated["test_accuracy"] == trained["test_accuracy"]
  assert evaluated["test_loss"] == trained["test_loss"]


def test_same_seed_same_numbers_different_seed_different(mock_mnist, tmp_path):
  a = main.run(tiny_config(), str(tmp_path / "a"))
  b = main.run(tiny_config(), str(tmp_path / "b"))
  c = main.run(tiny_config(seed=1), str(tmp_path / "c"))
  ha = (tmp_path / "a" / "metrics.jsonl").read_text()
  hb = (tmp_path / "b" / "metrics.jsonl").read_text()
  strip = lambda h: [{k: v for k, v in json.loads(l).items() if k != "time"}
                     for l in h.splitlines()]
  assert strip(ha) == strip(hb)
  assert a["test_accuracy"] == b["test_accuracy"] and a["test_loss"] == b["test_loss"]
  assert c["test_loss"] != a["test_loss"]


def test_resume_equals_uninterrupted_run(mock_mnist, tmp_path):
  """Stop after 1 epoch (and mid-epoch via a step checkpoint), rerun: same as straight."""
  straight = main.run(tiny_config(**{"num_epochs": 3, "model.dropout": 0.2}),
                      str(tmp_path / "straight"))
  resumed_dir = str(tmp_path / "resumed")
  main.run(tiny_config(**{"num_epochs": 1, "model.dropout": 0.2}), resumed_dir)
  resumed = main.run(tiny_config(**{"num_epochs": 3, "model.dropout": 0.2}), resumed_dir)
  assert resumed["test_loss"] == straight["test_loss"]
  # its wall time covers the training of every process, not the last one's alone
  assert resumed["wall_seconds"] >= resumed["train_seconds"] > 0
  strip = lambda d: [{k: v for k, v in json.loads(l).items() if k != "time"}
                     for l in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
  assert strip("resumed") == strip("straight")


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
  c = tiny_config()
  trainer = trainer_lib.Trainer(c, steps_per_epoch=10)
  state = trainer.init_state()
  images = np.random.default_rng(0).integers(0, 255, (500, 28, 28, 1), np.uint8)
  labels = np.random.default_rng(1).integers(0, 10, 500).astype(np.int32)
  order = trainer.epoch_order(1, 500, 100)
  active = trainer.replicate(np.array([True]))
  # a trained state, with non-trivial optimizer moments
  state, _ = trainer.train_steps(state, images, labels, order, 0, 3, active)
  ckpts = checkpoints.Checkpoints(str(tmp_path))
  meta = dict(epoch=1, history=[{"loss": 0.5}])
  ckpts.save_latest(int(state.step[0]), state, meta)
  restored_state, restored_meta = ckpts.restore_latest(trainer.abstract_state())
  _leaves_equal(state, restored_state)
  assert restored_meta == meta
  ckpts.close()


def test_loop_state_round_trips_through_a_checkpoints_json_meta():
  """The loop's state goes to checkpoints as a JSON dict: one saved mid-epoch (with
  partial sums, a seed stopped early) reads back as the same state and the same dict."""
  old = dict(epoch=3, step_in_epoch=40, partial=dict(loss=[1.5, 2.0], accuracy=[0.5, 0.25],
                                                     steps=[40, 40], skipped=[0, 1],
                                                     seconds=2.0),
             history=[{"epoch": 1, "seed": 0}], train_seconds=9.0, best=[0.1, None],
             best_epoch=[2, 0], wait=[1, 0], active=[True, False], epochs_run=[3, 2])
  loop = callbacks.LoopState.from_meta(json.loads(json.dumps(old)))
  assert loop.partial.means(1) == (2.0 / 40, 0.25 / 40) and loop.active == [True, False]
  assert loop.meta() == old
  assert callbacks.LoopState.fresh(2).meta().keys() == old.keys()


def test_a_run_without_validation_trains_every_image_and_keeps_the_last_epoch(
    mock_mnist, tmp_path, capsys):
  """validation_fraction 0: all 600 mock images train (6 steps of 100 an epoch, not 5),
  nothing is validated, no record, line or result holds val figures, and the best
  checkpoint is the last epoch's, the one --mode=eval then tests."""
  from experiments import list_runs
  c = tiny_config(**{"dataset.validation_fraction": 0.0, "num_seeds": 2})
  r = main.run(c, str(tmp_path))
  lines = [l for l in capsys.readouterr().out.splitlines() if "Epoch " in l]
  assert len(lines) == 4 and not any("val_" in l for l in lines), lines
  history = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert len(history) == 4 and not any("val_loss" in h or "val_accuracy" in h for h in history)
  saved = json.loads((tmp_path / "results.json").read_text())
  assert "val_loss" not in saved and "val_accuracy" not in saved
  for seed in saved["per_seed"]:
    assert seed["best_epoch"] == 2 and seed["checkpoint_step"] == 12
    assert "val_loss" not in seed and seed["test_accuracy"] == seed["test_accuracy_last_epoch"]
  assert (tmp_path / "history.png").exists()
  assert main.run(c, str(tmp_path), mode="eval")["test_accuracy"] == r["test_accuracy"]
  assert list_runs.describe(str(tmp_path))["val_accuracy"] is None


def test_nonfinite_loss_stops_with_message_and_keeps_checkpoint(mock_mnist, tmp_path):
  c = tiny_config(**{"optimizer.name": "sgd", "optimizer.learning_rate": 1e30,
                     "num_epochs": 3, "log_every_steps": 1})
  with pytest.raises(UserError, match=r"non-finite loss .* at step \d+ \(epoch \d+"):
    main.run(c, str(tmp_path))


def test_workdir_of_another_config_is_refused(mock_mnist, tmp_path):
  main.run(tiny_config(num_epochs=1), str(tmp_path))
  with pytest.raises(UserError, match="different config.*model.hidden_units"):
    main.run(tiny_config(**{"model.hidden_units": (64,)}), str(tmp_path))
  # --fresh sets the old run aside instead of deleting it.
  main.run(tiny_config(**{"model.hidden_units": (64,), "num_epochs": 1}), str(tmp_path),
           fresh=True)
  assert any(p.name.startswith(tmp_path.name + ".old-") for p in tmp_path.parent.iterdir())


def test_eval_on_empty_workdir_says_nothing_to_evaluate(mock_mnist, tmp_path):
  with pytest.raises(UserError, match="nothing to evaluate"):
    main.run(tiny_config(), str(tmp_path), mode="eval")


@pytest.mark.parametrize("num_seeds", [1, 3])
def test_epoch_order_is_jax_random_permutation_bit_for_bit(num_seeds):
  """The host-sorted epoch order equals jax.random.permutation of each seed's data key."""
  trainer = trainer_lib.Trainer(tiny_config(num_seeds=num_seeds), steps_per_epoch=10)
  for epoch, n, batch in ((2, 60000, 128), (5, 1000, 100), (0, 1, 1)):
    order = np.asarray(trainer.epoch_order(epoch, n, batch))
    steps = n // batch
    assert order.shape == (num_seeds, steps, batch)
    for r in range(num_seeds):
      ref = np.asarray(jax.random.permutation(
          jax.random.fold_in(trainer.data_keys[r], epoch), n))
      np.testing.assert_array_equal(order[r], ref[: steps * batch].reshape(steps, batch))
    if num_seeds == 3 and n > 1:  # seeds shuffle differently
      assert not np.array_equal(order[0], order[1])


def test_host_placement_trains_exactly_as_device_placement(tmp_path, mock_mnist):
  """Batches gathered on the host and copied over give the device path's numbers, bit for
  bit, for two vmapped seeds with dropout."""
  runs = {}
  for placement in ("device", "host"):
    c = tiny_config(**{"num_epochs": 2, "num_seeds": 2, "model.dropout": 0.2,
                       "dataset.placement": placement})
    runs[placement] = main.run(c, str(tmp_path / placement))
  strip = lambda d: [{k: v for k, v in json.loads(l).items() if k != "time"}
                     for l in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
  assert strip("host") == strip("device")
  assert runs["host"]["test_loss"] == runs["device"]["test_loss"]
  seed1 = [runs[p]["per_seed"][1]["test_accuracy"] for p in ("host", "device")]
  assert seed1[0] == seed1[1]


def test_auto_placement_keeps_a_split_on_the_device_unless_it_is_too_big(monkeypatch):
  c = tiny_config()
  assert trainer_lib.data_placement(c, 10**12) == "device"  # CPU: no device memory limit
  fake = type("Dev", (), {"memory_stats": lambda self: {"bytes_limit": 1000}})()
  monkeypatch.setattr(jax, "local_devices", lambda: [fake])
  assert trainer_lib.data_placement(c, 400) == "device"
  assert trainer_lib.data_placement(c, 600) == "host"
  c.dataset.placement = "device"
  assert trainer_lib.data_placement(c, 600) == "device"


@pytest.mark.parametrize("per_dispatch, spans", [(1, [(3, 1), (4, 1)]), (2, [(3, 2)]),
                                                 (0, [(3, 2)])])
def test_host_blocks_start_mid_epoch_and_follow_the_order(per_dispatch, spans):
  """Host-resident data: each block's batches, gathered on the host, with the order that
  picks them out of it (replica by replica, step by step)."""
  c = tiny_config(num_seeds=2, batch_size=10, steps_per_dispatch=per_dispatch,
                  **{"dataset.placement": "host"})
  trainer = trainer_lib.Trainer(c, steps_per_epoch=5)
  images = np.arange(50 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(50, 28, 28, 1)
  images[:, 0, 0, 0] = np.arange(50)  # each image identifiable
  labels = np.arange(50, dtype=np.int32) % 10
  train_data = trainer_lib.TrainData(trainer, data.Split(images, labels))
  assert train_data.on_host
  order = trainer.epoch_order(1, 50, 10)  # (2, 5, 10)
  got = list(train_data.blocks(1, start=3))
  assert [(b, n) for b, n, _ in got] == spans
  for b, n, (bi, bl, local, b0) in got:
    assert b0 == 0 and np.asarray(local).shape == (2, n, 10)
    picked = np.asarray(bi)[np.asarray(local), 0, 0, 0]  # (2, n, 10)
    np.testing.assert_array_equal(picked, order[:, b:b + n])
    np.testing.assert_array_equal(np.asarray(bl)[np.asarray(local)], labels[order[:, b:b + n]])


def test_blocks_end_at_the_epoch_and_at_checkpoint_steps():
  assert list(trainer_lib.block_spans(0, 10, 0, 4, 0)) == [(0, 4), (4, 4), (8, 2)]
  assert list(trainer_lib.block_spans(0, 10, 0, 4, 5)) == [(0, 4), (4, 1), (5, 4), (9, 1)]
  assert list(trainer_lib.block_spans(2, 10, 10, 100, 7)) == [(2, 2), (4, 6)]


def test_checkpoint_every_epochs_saves_less_and_resumes_exactly(mock_mnist, tmp_path, monkeypatch):
  """k=2 over 5 epochs saves after epochs 2, 4 and 5 (the end), not every epoch; a run
  stopped after epoch 4 and resumed equals the straight one, best checkpoint included."""
  saved = []
  save_latest = checkpoints.Checkpoints.save_latest
  monkeypatch.setattr(checkpoints.Checkpoints, "save_latest",
                      lambda self, step, state, meta: (saved.append(meta["epoch"]),
                                                       save_latest(self, step, state, meta)))
  every = {"checkpoint_every_epochs": 2, "model.dropout": 0.2}
  straight = main.run(tiny_config(num_epochs=5, **every), str(tmp_path / "straight"))
  assert saved == [2, 4, 5]
  main.run(tiny_config(num_epochs=4, **every), str(tmp_path / "resumed"))
  resumed = main.run(tiny_config(num_epochs=5, **every), str(tmp_path / "resumed"))
  assert resumed["test_loss"] == straight["test_loss"]  # the best checkpoint's test
  assert resumed["best_epoch"] == straight["best_epoch"]
  assert resumed["test_accuracy_last_epoch"] == straight["test_accuracy_last_epoch"]


def test_steps_per_dispatch_trains_as_one_step_per_dispatch(mock_mnist, tmp_path):
  """Blocks of 7 steps in one jitted scan (cut at the epoch's end and at checkpoint
  steps) give the numbers one step per call gives, and the same resumable checkpoints."""
  strip = lambda d: [{k: v for k, v in json.loads(l).items() if k != "time"}
                     for l in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
  base = {"model.dropout": 0.2, "num_seeds": 2, "batch_size": 30}  # 18 steps an epoch
  one = main.run(tiny_config(steps_per_dispatch=1, **base), str(tmp_path / "one"))
  blocks = main.run(tiny_config(steps_per_dispatch=7, checkpoint_every_steps=5, **base),
                    str(tmp_path / "blocks"))
  assert strip("blocks") == strip("one")
  assert blocks["test_loss"] == one["test_loss"]


def test_checkpoints_are_named_after_the_furthest_seed():
  """Seeds trained together stop early one by one; a stopped seed's step stays, so the
  latest checkpoint must follow the seed that still trains (seed 0 may be the one that
  stopped)."""
  import types

  import numpy as np

  from digitjax import saves

  assert saves.step_of(types.SimpleNamespace(step=np.array([840, 1260, 1050]))) == 1260
  assert saves.step_of(types.SimpleNamespace(step=np.array([42]))) == 42
