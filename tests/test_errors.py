"""Bad input gets one clear message, never a traceback: the config and the data (the
command line's own mistakes: tests/test_command_line.py)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, needs_mnist, tiny_config
from digitjax import config as config_lib
from digitjax import validation
from digitjax import data
from digitjax.errors import UserError


@pytest.mark.parametrize("field,value,message", [
    ("model.name", "resnet9000", "model.name='resnet9000' is not known; valid: .*cnn_bn"),
    ("optimizer.name", "adamw2", "optimizer.name='adamw2' is not known; valid: .*rmsprop"),
    ("dataset.name", "imagenet", "dataset.name='imagenet' is not known; valid: .*mnist"),
    ("optimizer.schedule", "linear", "schedule='linear' is not known"),
    ("optimizer.learning_rate", -0.1, r"learning_rate=-0.1 is out of range"),
    ("model.dropout", 1.0, r"dropout=1.0 is out of range; it must lie in \[0, 1\)"),
    ("dataset.validation_fraction", 1.0, r"validation_fraction=1.0 is out of range; it "
     r"must lie in \[0, 1\)"),
    ("model.init", "xavier", "model.init='xavier' is not known; valid: keras, torch"),
    ("optimizer.beta_1", 1.0, r"beta_1=1.0 is out of range; it must lie in \[0, 1\)"),
    ("optimizer.epsilon", 0.0, r"epsilon=0.0 is out of range; it must lie in \(0, inf\]"),
    ("optimizer.schedule", "one_cycle", "schedule='one_cycle' is not known; valid: .*onecycle"),
    ("batch_size", 0, r"batch_size=0 is out of range"),
    ("checkpoint_every_epochs", 0, r"checkpoint_every_epochs=0 is out of range"),
])
def test_validation_names_the_field_and_the_fix(field, value, message):
  errors = validation.validate(tiny_config(**{field: value}))
  assert len(errors) == 1
  import re
  assert re.search(message, errors[0]), errors[0]


def test_eps_placement_is_an_rmsprop_setting():
  errors = validation.validate(tiny_config(**{"optimizer.name": "adam",
                                              "optimizer.eps_in_sqrt": False}))
  assert errors == ["config.optimizer.eps_in_sqrt=False applies to rmsprop only, not 'adam'; "
                    "leave it True."]
  assert validation.validate(tiny_config(**{"optimizer.name": "rmsprop",
                                             "optimizer.eps_in_sqrt": False})) == []


def test_optimizer_and_schedule_fields_apply_where_they_are_read():
  """beta_1/beta_2 are Adam's, epsilon the four adaptive optimizers', the one-cycle
  fields the onecycle schedule's: set elsewhere they would change nothing."""
  adam = {"optimizer.name": "adam"}
  assert validation.validate(tiny_config(**adam, **{"optimizer.beta_1": 0.7,
                                                    "optimizer.epsilon": 1e-8})) == []
  assert validation.validate(tiny_config(**{"optimizer.name": "rmsprop",
                                             "optimizer.beta_2": 0.9})) == [
      "config.optimizer.beta_2=0.9 applies to adam only, not 'rmsprop'; leave it 0.999."]
  assert validation.validate(tiny_config(**{"optimizer.name": "sgd",
                                             "optimizer.epsilon": 1e-8})) == [
      "config.optimizer.epsilon=1e-08 applies to rmsprop, adam, adadelta, adagrad only, "
      "not 'sgd'; leave it 1e-07."]
  assert validation.validate(tiny_config(**{"optimizer.schedule": "cosine",
                                             "optimizer.pct_start": 0.25})) == [
      "config.optimizer.pct_start=0.25 applies to schedule onecycle only, not 'cosine'; "
      "leave it 0.3."]
  onecycle = {"optimizer.schedule": "onecycle"}
  for field, value, message in (("pct_start", 1.0, "pct_start=1.0 is out of range; it "
                                 "must lie in (0, 1)"),
                                ("div_factor", 0.0, "div_factor=0.0 is out of range"),
                                ("final_div_factor", -1.0, "final_div_factor=-1.0 is out")):
    errors = validation.validate(tiny_config(**onecycle, **{f"optimizer.{field}": value}))
    assert len(errors) == 1 and message in errors[0], errors


def test_no_validation_set_refuses_what_watches_it():
  no_val = {"dataset.validation_fraction": 0.0}
  assert validation.validate(tiny_config(**no_val)) == []
  assert validation.validate(tiny_config(**no_val, **{"early_stopping.enabled": True})) == [
      "config.early_stopping.enabled=True watches val_loss on the validation set, and "
      "config.dataset.validation_fraction=0 holds none back; set a validation_fraction "
      "(e.g. 0.1) or --config.early_stopping.enabled=False."]
  errors = validation.validate(tiny_config(**no_val, **{"reduce_on_plateau.enabled": True,
                                                        "monitor": "val_accuracy"}))
  assert len(errors) == 1 and "reduce_on_plateau.enabled=True watches val_accuracy" in errors[0]
  # a validation_split is a validation set, whatever the fraction
  assert validation.validate(tiny_config(**no_val, **{"early_stopping.enabled": True,
                                                      "dataset.validation_split": "test"})) == []


def test_default_and_flagship_configs_are_valid():
  assert validation.validate(config_lib.get_config()) == []


def test_missing_dataset_offline_names_tfds_data_dir(tmp_path, caplog):
  c = tiny_config(**{"dataset.data_dir": str(tmp_path)})
  with caplog.at_level("WARNING"), pytest.raises(UserError, match="not prepared.*TFDS_DATA_DIR"):
    data.load_train_val(c)
  assert not data.is_prepared(c)
  # One message, ours: not TFDS's "Variant folder ... has no dataset_info.json" before it.
  assert "dataset_info" not in caplog.text


def test_data_dir_that_does_not_exist(tmp_path):
  c = tiny_config(**{"dataset.data_dir": str(tmp_path / "nope")})
  with pytest.raises(UserError, match="does not exist.*TFDS_DATA_DIR"):
    data.load_train_val(c)


def test_a_busy_workdir_is_refused_before_the_data_are_read(tmp_path):
  """Refused at once, not after reading the data and compiling (a minute for GoogLeNet):
  here the data are missing too, and the first thing said is that the workdir is busy."""
  from digitjax import main, workdir as workdir_lib

  c = tiny_config(**{"dataset.data_dir": str(tmp_path / "nope")})
  run = tmp_path / "run"
  run.mkdir()
  with workdir_lib.lock(str(run)):  # as another training holds it
    lock_file = (run / ".lock").read_text()
    for fresh in (False, True):
      with pytest.raises(UserError, match=f"workdir {run} is in use by another run"):
        main.run(c, str(run), fresh=fresh)
    assert (run / ".lock").read_text() == lock_file and os.listdir(run) == [".lock"]


@needs_mnist
def test_unknown_split_lists_the_real_ones():
  c = tiny_config(**{"dataset.test_split": "validation"})
  with pytest.raises(UserError, match="no split 'validation'; it has .*test"):
    data.load_test(c)


def test_validation_split_is_seeded_disjoint_and_sized(mock_mnist):
  c = tiny_config()  # mock data: 600 train examples, of max_train_examples=2000
  train_a, val_a = data.load_train_val(c)
  train_b, val_b = data.load_train_val(c)
  assert len(val_a) == 60 and len(train_a) == 540
  assert (val_a.images == val_b.images).all()
  c.dataset.split_seed = 1
  _, val_c = data.load_train_val(c)
  assert not (val_a.labels == val_c.labels).all()


def test_model_that_does_not_fit_the_images_is_refused_before_training(tmp_path):
  from digitjax import main
  c = tiny_config(**{"model.name": "cnn3_v1", "dataset.image_size": 12})
  with pytest.raises(UserError, match="cannot take mnist images of shape \\(12, 12, 1\\)"):
    main.run(c, str(tmp_path))
  assert not any(tmp_path.iterdir())  # nothing written


def _model(name, **overrides):
  from conftest import with_overrides
  return with_overrides(config_lib.choose_model(tiny_config(), name), **overrides)


def test_new_model_fields_are_validated():
  assert validation.validate(_model("flowers_cnn")) == []
  assert validation.validate(_model("cnn3_v1")) == []
  errors = validation.validate(_model("flowers_cnn", **{"model.head": "avg"}))
  assert len(errors) == 1 and "model.head='avg' is not known; valid: flatten, gap" in errors[0]
  errors = validation.validate(_model("flowers_cnn", **{"model.kernel_sizes": (3, 3)}))
  assert len(errors) == 1 and "one kernel size per conv block" in errors[0]
  errors = validation.validate(_model("flowers_cnn", **{"model.input_scale": 0.0}))
  assert len(errors) == 1 and "input_scale=0.0 is out of range" in errors[0]
  errors = validation.validate(_model("flowers_cnn", **{"model.padding": "full"}))
  assert len(errors) == 1 and "model.padding='full' is not known" in errors[0]
  errors = validation.validate(_model("flowers_cnn", **{"model.block_dropout": (0.5, 0.2)}))
  assert len(errors) == 1 and "one rate in [0, 1) per conv block" in errors[0]
  errors = validation.validate(_model("flowers_cnn", **{"model.block_dropout": (.5, .5, 1.)}))
  assert len(errors) == 1 and "block_dropout=(0.5, 0.5, 1.0)" in errors[0]
  errors = validation.validate(_model("cnn3_v1", **{"model.conv_paddings": ("same", "valid")}))
  assert len(errors) == 1 and "must be three of valid, same, one per conv" in errors[0]
  errors = validation.validate(tiny_config(**{"loss": "mse", "loss_clip": 1e-7}))
  assert len(errors) == 1 and "loss_clip=1e-07 applies to cross_entropy only" in errors[0]
  errors = validation.validate(_model("cnn3_v1", **{"model.pool_padding": "full"}))
  assert len(errors) == 1 and "model.pool_padding='full' is not known" in errors[0]
  errors = validation.validate(_model("googlenet", **{"model.aux_weight": -1.0}))
  assert len(errors) == 1 and "aux_weight=-1.0 is out of range" in errors[0]
  # A family's own field left out (--config.model.name=flowers_cnn on another family's
  # config) takes its default, and is checked as such.
  c = tiny_config(**{"model.name": "flowers_cnn"})
  assert validation.validate(c) == []
  from digitjax import models
  assert models.settings(c.model).filters == (16, 32, 64)


def test_a_field_of_another_model_is_refused_naming_the_models_fields():
  """flowers_cnn's batch_norm on the MLP used to pass and change the workdir's identity."""
  shared = ("name, hidden_units, hidden_activation, output_activation, dropout, l2, "
            "conv_impl, init")
  assert validation.validate(tiny_config(**{"model.batch_norm": True})) == [
      f"config.model.batch_norm is not a field of model 'mlp'; its fields: {shared}."]
  assert validation.validate(_model("cnn3_v1", **{"model.aux_weight": 0.3})) == [
      "config.model.aux_weight is not a field of model 'cnn3_v1'; its fields: "
      f"{shared}, conv_paddings, pool_padding."]


def test_config_json_written_before_a_field_existed_is_the_same_config():
  """Fields added to the schema at their default must not orphan existing workdirs."""
  import json
  c = tiny_config()
  old = json.loads(c.to_json_best_effort())
  del old["augment"]["rotation_range"]
  del old["dataset"]["validation_split"]
  for field in ("beta_1", "beta_2", "epsilon", "pct_start", "div_factor", "final_div_factor"):
    del old["optimizer"][field]
  del old["model"]["init"]
  # written when the shared schema held every family's fields (at their defaults)
  old["model"].update(filters=[16, 32, 64], kernel_sizes=[3, 3, 3], batch_norm=False,
                      first_pool=[2, 2], head="flatten", input_scale=1.0, aux_weight=0.3,
                      conv_paddings=["valid", "valid", "valid"], pool_padding="valid")
  from digitjax import fingerprint
  assert fingerprint.from_json(json.dumps(old)) == fingerprint.fingerprint(c)
  c.augment.rotation_range = 10.0
  assert fingerprint.from_json(json.dumps(old)) != fingerprint.fingerprint(c)
  assert "augment.rotation_range: 0.0 -> 10.0" in fingerprint.describe_difference(
      fingerprint.from_json(json.dumps(old)), fingerprint.fingerprint(c))
  # and such a run still reads back whole: the fields it lacks at their defaults
  from digitjax import inference, optim
  recorded = inference.config_from_json(json.dumps(old))
  assert recorded.optimizer.epsilon == 1e-7 and recorded.model.init == "keras"
  assert recorded.model.filters == (16, 32, 64)  # what it recorded stays
  optim.make(recorded, 10)


def test_ctrl_c_while_starting_up_is_one_line_not_a_traceback(tmp_path):
  """Ctrl-C before the training loop (importing TensorFlow, reading the data): before,
  a KeyboardInterrupt traceback. The signal is real; only its moment is pinned down."""
  # Python's own SIGINT handling, as in a terminal: a job started in the background
  # (CI may be one) inherits SIGINT ignored
  script = ("import os, signal, time, sys\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from absl import app\n"
            "from digitjax import main\n"
            "def run(*a, **k):\n"
            "  os.kill(os.getpid(), signal.SIGINT)\n"
            "  time.sleep(30)\n"
            "  sys.exit('SIGINT did not arrive')\n"
            "main.run = run\n"
            "app.run(main.main, flags_parser=main.parse_flags)\n")
  r = subprocess.run([sys.executable, "-c", script, "--config=tests/tiny_config.py",
                      f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                     timeout=120)
  assert r.returncode == 130, r.stderr
  assert r.stderr == (f"Stopped by Ctrl-C. What {tmp_path} already held is intact; rerun "
                      "the same command to resume.\n")


def test_no_room_to_write_reaches_the_runners_as_a_user_error(tmp_path, monkeypatch):
  """digitjax.main.run is what the reproduce and sweep runners call: a full disk there is
  a UserError (a row's error status), while other OSErrors keep their tracebacks."""
  import errno
  from digitjax import main, train

  def full(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(train, "train_and_evaluate", full)
  with pytest.raises(UserError, match=f"could not write in {tmp_path} \\(No space left"):
    main.run(tiny_config(), str(tmp_path))

  def missing(*a, **k):
    raise FileNotFoundError(errno.ENOENT, "a bug, not the disk")

  monkeypatch.setattr(train, "train_and_evaluate", missing)
  with pytest.raises(FileNotFoundError):
    main.run(tiny_config(), str(tmp_path))
