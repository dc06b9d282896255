"""Issue #21 (checkpoints): faults provoked on disk in a finished tiny run.

A lost or damaged best checkpoint is rebuilt from the latest one when that holds the best
state (or the latest is evaluated, and results.json says so); a checkpoint of another
config is refused in one message and left where it is.
"""
import json
import os
import shutil

import pytest

from conftest import npz_data, tiny_config
from digitjax import main
from digitjax.errors import UserError


@pytest.fixture(scope="module", autouse=True)
def _npz_data(tmp_path_factory):
  """Random MNIST-shaped splits (npz_data): these faults are on disk, not in learning."""
  with npz_data(tmp_path_factory.mktemp("npz")):
    yield


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished tiny run (2 epochs, mock data) and its results."""
  wd = tmp_path_factory.mktemp("finished") / "run"
  results = main.run(tiny_config(), str(wd))
  return wd, results


@pytest.fixture
def run(finished, tmp_path):
  """A copy of the finished run to damage."""
  wd, results = finished
  copy = tmp_path / "run"
  shutil.copytree(wd, copy)
  return copy, results


def _best_steps(wd):
  return sorted(p.name for p in (wd / "checkpoints" / "best").iterdir() if p.name.isdigit())


def _same_figures(got, recorded):
  assert got["test_accuracy"] == recorded["test_accuracy"]
  assert got["test_loss"] == recorded["test_loss"]
  assert "evaluated" not in got  # the best weights themselves


def test_deleted_best_is_rebuilt_by_train_and_eval_reproduces(run, capsys):
  wd, recorded = run
  assert recorded["best_epoch"] == recorded["epochs_run"]  # the latest holds the best
  steps = _best_steps(wd)
  for s in steps:
    shutil.rmtree(wd / "checkpoints" / "best" / s)
  _same_figures(main.run(tiny_config(), str(wd)), recorded)
  assert _best_steps(wd) == steps
  assert "rebuilt it from the latest" in capsys.readouterr().err
  _same_figures(main.run(tiny_config(), str(wd), mode="eval"), recorded)
  _same_figures(json.loads((wd / "results.json").read_text()), recorded)


def test_damaged_best_is_evaluated_from_latest_and_rebuilt(run, capsys):
  wd, recorded = run
  (step,) = _best_steps(wd)
  state = wd / "checkpoints" / "best" / step / "state"
  for root, _, files in os.walk(state):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(3)
  _same_figures(main.run(tiny_config(), str(wd), mode="eval"), recorded)
  err = capsys.readouterr().err
  assert "unreadable" in err and "holds the same best state" in err
  _same_figures(main.run(tiny_config(), str(wd)), recorded)
  assert _best_steps(wd) == [step]
  _same_figures(main.run(tiny_config(), str(wd), mode="eval"), recorded)


def test_lost_best_not_in_latest_evaluates_latest_and_records_it(run, capsys):
  wd, recorded = run
  shutil.rmtree(wd / "checkpoints" / "best")
  # The latest checkpoints say the best epoch was 1: their state is not the best one.
  from digitjax import checkpoints, trainer as trainer_lib
  trainer = trainer_lib.Trainer(tiny_config(), steps_per_epoch=1)
  ckpts = checkpoints.Checkpoints(str(wd))
  state, meta = ckpts.restore_latest(trainer.abstract_state())
  ckpts.close()
  shutil.rmtree(wd / "checkpoints" / "latest")
  ckpts = checkpoints.Checkpoints(str(wd))
  ckpts.save_latest(int(state.step.max()), state, {**meta, "best_epoch": [1]})
  ckpts.close()
  got = main.run(tiny_config(), str(wd), mode="eval")
  assert got["test_accuracy"] == recorded["test_accuracy"]  # the latest's weights
  assert got["evaluated"].startswith("latest checkpoint (epoch 2")
  assert "evaluating the latest checkpoint" in capsys.readouterr().err
  other = main.run(tiny_config(), str(wd), mode="eval", eval_split="test")  # the same way
  assert other["evaluated"] == got["evaluated"]
  assert other["test_accuracy"] == [got["test_accuracy"]]
  got = main.run(tiny_config(), str(wd))  # train: finishes, on the latest, and says so
  assert got["evaluated"].startswith("latest checkpoint (epoch 2")
  assert json.loads((wd / "results.json").read_text())["evaluated"] == got["evaluated"]


def test_eval_of_another_width_is_refused_and_moves_nothing(run):
  wd, _ = run
  (wd / "config.json").unlink()
  steps = _best_steps(wd)
  with pytest.raises(UserError, match=r"best checkpoint .*different config.*hidden_units"):
    main.run(tiny_config(**{"model.hidden_units": (64,)}), str(wd), mode="eval")
  assert _best_steps(wd) == steps
  assert not (wd / "checkpoints" / "unreadable").exists()


def test_another_seed_is_refused_without_config_json(run):
  wd, _ = run
  (wd / "config.json").unlink()
  with pytest.raises(UserError, match=r"different config \(seed: 0 -> 1\)"):
    main.run(tiny_config(seed=1), str(wd))
  assert not (wd / "checkpoints" / "unreadable").exists()


def test_checkpoint_without_its_config_or_of_other_shapes_is_one_message_and_stays(run):
  """A checkpoint whose meta records no config is refused; one that records this config
  but holds arrays of other shapes (a model whose layout changed) too. Neither moves."""
  wd, _ = run
  (wd / "config.json").unlink()
  from digitjax import checkpoints, fingerprint, trainer as trainer_lib
  trainer = trainer_lib.Trainer(tiny_config(), steps_per_epoch=1)
  ckpts = checkpoints.Checkpoints(str(wd))
  state, meta = ckpts.restore_best(trainer.abstract_state())
  ckpts.close()
  (step,) = _best_steps(wd)
  wider = tiny_config(**{"model.hidden_units": (64,)})
  for key, value in ((fingerprint.META_KEY, None),
                     (fingerprint.META_KEY, fingerprint.fingerprint(wider))):
    shutil.rmtree(wd / "checkpoints" / "best")
    ckpts = checkpoints.Checkpoints(str(wd))
    ckpts.save_best(int(step), state, {**meta, key: value} if value else
                    {k: v for k, v in meta.items() if k != key})
    ckpts.close()
    message = "does not fit this config" if value else "records no config"
    with pytest.raises(UserError, match=rf"best checkpoint .*{message}"):
      main.run(wider, str(wd), mode="eval")
    assert _best_steps(wd) == [step]
    assert not (wd / "checkpoints" / "unreadable").exists()


def test_a_reader_passes_steps_a_training_deletes_while_it_lists_them(run, monkeypatch):
  """orbax lists the step folders, then reads each one's metadata: a training's retention
  deleting a step in between raised FileNotFoundError in eval, predict and load. Each
  reader's listing is now tried again; the training itself still fails loudly."""
  import orbax.checkpoint as ocp
  import digitjax
  from digitjax import checkpoints

  wd, results = run
  vanishing = {"init": 2, "reload": 2}  # the first listings of each kind meet a deleted step
  init, reload = ocp.CheckpointManager.__init__, ocp.CheckpointManager.reload

  def flaky(name, real):
    def call(self, *args, **kwargs):
      if vanishing[name]:
        vanishing[name] -= 1
        raise FileNotFoundError(2, "No such file or directory", "checkpoints/best/20")
      return real(self, *args, **kwargs)
    return call

  monkeypatch.setattr(ocp.CheckpointManager, "__init__", flaky("init", init))
  monkeypatch.setattr(ocp.CheckpointManager, "reload", flaky("reload", reload))
  model = digitjax.load(str(wd))
  assert vanishing == {"init": 0, "reload": 0} and model.predict(
      __import__("numpy").zeros((1, 28, 28, 1), "uint8")).shape == (1, 10)
  vanishing["init"] = 1
  with pytest.raises(FileNotFoundError):
    checkpoints.Checkpoints(str(wd))  # a training: a missing file is a real fault
