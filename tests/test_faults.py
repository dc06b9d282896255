"""Faults of issue #21 provoked for real: the faulty file written on disk and run through
the real command line, real signals, real training. Each says what it was before."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, read_history, tiny_config
from digitjax import validation
from digitjax import config_files
from digitjax import main


def _run(*args, cwd=ROOT, timeout=600):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=timeout)


def _write(path, text):
  path.write_text(textwrap.dedent(text))
  return path



TINY = """\
    from digitjax import config as base


    def get_config():
      c = base.get_config()
      c.name = "tiny"
      c.model.name = "mlp"
      c.optimizer.name = "adam"
      c.dataset.max_train_examples = 2000
      c.dataset.max_test_examples = 1000
      c.dataset.download = False
      c.batch_size = 100
      c.eval_batch_size = 500
      c.num_epochs = 1
"""


# (8) A misspelt field in a config file was added silently and the default trained.

def test_misspelt_field_in_a_config_file_is_refused_naming_the_nearest(tmp_path):
  path = _write(tmp_path / "typo.py", TINY + """\
      c.model.hiden_units = (64,)
      c.optimizer.learning_rat = 0.1
      return c
  """)
  workdir = tmp_path / "run"
  r = _run("-m", "digitjax.main", f"--config={path}", f"--workdir={workdir}")
  assert r.returncode == 2, r.stderr
  assert r.stderr == (
      "error: invalid config:\n"
      "  config.model.hiden_units is not a field of the config; nearest valid: "
      "model.hidden_units, model.init, model.hidden_activation.\n"
      "  config.optimizer.learning_rat is not a field of the config; nearest valid: "
      "optimizer.learning_rate, optimizer.eps_in_sqrt, optimizer.name.\n")
  assert not workdir.exists()  # nothing computed or written
  # the runners' route (experiments.reproduce.catalogue.load_config -> config.from_file)
  errors = validation.validate(config_files.from_file(str(path)))
  assert len(errors) == 2 and "config.model.hiden_units is not a field" in errors[0]


def test_misspelt_field_in_a_sweep_base_is_refused(tmp_path):
  path = _write(tmp_path / "sweep_typo.py", TINY + """\
      c.model.dropuot = 0.5
      return c


    def get_sweep():
      return dict(name="typo", base=get_config(), seeds=1, axes={"num_epochs": [1]})
  """)
  r = _run("-m", "experiments.sweep", str(path), f"--root={tmp_path / 'sweeps'}")
  assert r.returncode == 2, r.stderr
  assert ("config.model.dropuot is not a field of the config; nearest valid: "
          "model.dropout") in r.stderr
  assert "Traceback" not in r.stderr
  assert not list((tmp_path / "sweeps").rglob("*.json"))


def test_a_group_the_schema_lacks_is_refused_and_shipped_configs_have_no_unknown_fields():
  """Every shipped config is the schema's fields (the speedrun's too: its recipe is
  ordinary fields now, no group of a tool's own)."""
  for path in sorted((ROOT / "configs").glob("*.py")):
    assert validation.unknown_fields(config_files.from_file(str(path))) == [], path
  c = tiny_config()
  c.speedrun = type(c)()
  c.speedrun.peak_lr = 0.01
  (error,) = validation.unknown_fields(c)
  assert error.startswith("config.speedrun.peak_lr is not a field of the config; nearest "
                          "valid: name, seed, num_seeds, ")
  c = tiny_config()
  c.modle = 3
  assert validation.unknown_fields(c) == [
      "config.modle is not a field of the config; nearest valid: model, model.l2."]


# (12) A config or sweep file that does not import, or whose get_config/get_sweep fails
# or gives the wrong thing, printed a traceback (or, for empty axes, trained the base).

CONFIG_FAULTS = {
    "syntax": ("def get_config(:\n  pass\n", "", "does not import: SyntaxError: invalid syntax (line 1)."),
    "raises": ("from digitjax import config as base\n"
               "def get_config():\n"
               "  c = base.get_config()\n"
               "  return c.batch_size / 0\n", "",
               ": get_config() raised ZeroDivisionError: division by zero (line 4)."),
    "missing_module": ("import digitjax.no_such_module\ndef get_config():\n  pass\n", "",
                       "does not import: ModuleNotFoundError: No module named "
                       "'digitjax.no_such_module' (line 1)."),
    "wrong_type": ("def get_config():\n  return dict(model='mlp')\n", "",
                   ": get_config() returned dict, not ConfigDict; a config file defines "
                   "get_config() returning an ml_collections.ConfigDict"),
    "no_return": ("from digitjax import config as base\n"
                  "def get_config():\n  c = base.get_config()\n", "",
                  ": get_config() returned None (no return statement?)"),
    "no_variant": ("from digitjax import config as base\n"
                   "def get_config():\n  return base.get_config()\n", ":b1",
                   ": get_config() takes no variant, but {path}:b1 names one; leave ':b1' off."),
    "no_get_config": ("from digitjax import config as base\nc = base.get_config()\n", "",
                      " defines no get_config(); a config file defines get_config()"),
}


@pytest.mark.parametrize("fault", sorted(CONFIG_FAULTS))
def test_config_file_that_does_not_load_is_one_line_naming_it(tmp_path, fault):
  text, variant, message = CONFIG_FAULTS[fault]
  path = tmp_path / f"{fault}.py"
  path.write_text(text)
  workdir = tmp_path / "run"
  r = _run("-m", "digitjax.main", f"--config={path}{variant}", f"--workdir={workdir}")
  assert r.returncode == 2, r.stderr
  lines = r.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), r.stderr
  assert message.format(path=path) in lines[0], lines[0]
  assert r.stdout == "" and not workdir.exists()
  # the experiment runners' route (catalogue.load_config): the same message
  from digitjax.errors import UserError
  with pytest.raises(UserError) as e:
    config_files.from_file(str(path), variant[1:] or None)
  assert f"error: {e.value}" == lines[0]


# a base that trains in seconds, should a fault slip through and the sweep run
SMALL = ("from digitjax import config as base\n"
         "def small():\n"
         "  c = base.get_config()\n"
         "  c.model.name, c.num_epochs, c.dataset.download = 'mlp', 1, False\n"
         "  c.dataset.max_train_examples = c.dataset.max_test_examples = 500\n"
         "  return c\n")
SWEEP_FAULTS = {
    "syntax": ("def get_sweep(\n", "does not import: SyntaxError: '(' was never closed (line 1)."),
    "no_get_sweep": ("from digitjax import config as base\nbase = base.get_config()\n",
                     " defines no get_sweep(); a sweep file defines get_sweep()"),
    "raises": ("def get_sweep():\n  return {}['name']\n",
               ": get_sweep() raised KeyError: 'name' (line 2)."),
    "not_a_dict": ("def get_sweep():\n  return ['model.dropout']\n",
                   ": get_sweep() returned list, not dict"),
    "no_base": ("def get_sweep():\n  return dict(name='x', axes={'seed': [0]})\n",
                ": get_sweep() returned no base;"),
    "empty_axes": (SMALL + "def get_sweep():\n  return dict(name='x', base=small(), axes={})\n",
                   ": get_sweep()'s axes are {}: no grid to run;"),
    "empty_axis": (SMALL + "def get_sweep():\n"
                   "  return dict(name='x', base=small(), axes={'model.dropout': []})\n",
                   ": axis 'model.dropout' has no values ([]); give it a list"),
}


@pytest.mark.parametrize("fault", sorted(SWEEP_FAULTS))
def test_sweep_file_that_does_not_load_is_one_line_naming_it(tmp_path, fault):
  text, message = SWEEP_FAULTS[fault]
  path = tmp_path / f"{fault}.py"
  path.write_text(text)
  root = tmp_path / "sweeps"
  r = _run("-m", "experiments.sweep", str(path), f"--root={root}")
  assert r.returncode == 2, r.stderr
  lines = r.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), r.stderr
  assert message in lines[0], lines[0]
  assert not root.exists()  # nothing trained, nothing written


# (9) NaN passed every range check and inf the unbounded ones: a run trained with them.

@pytest.mark.parametrize("field,value", [("optimizer.learning_rate", "nan"),
                                         ("optimizer.learning_rate", "inf"),
                                         ("model.l2", "nan"), ("augment.noise_std", "inf"),
                                         ("reduce_on_plateau.min_lr", "-inf")])
def test_nonfinite_field_is_refused_up_front(tmp_path, field, value):
  workdir = tmp_path / "run"
  r = _run("-m", "digitjax.main", "--config=tests/tiny_config.py", f"--workdir={workdir}",
           f"--config.{field}={value}")
  assert r.returncode == 2, r.stderr
  assert r.stderr == (f"error: invalid config:\n  config.{field}={float(value)!r} must be a "
                      "finite number, not NaN or infinity.\n")
  assert not workdir.exists()


def test_nonfinite_field_in_a_config_file_is_refused(tmp_path):
  path = _write(tmp_path / "nan.py", TINY + """\
      c.model.dropout = float("nan")
      c.model.hidden_units = (32,)
      return c
  """)
  assert validation.validate(config_files.from_file(str(path))) == [
      "config.model.dropout=nan must be a finite number, not NaN or infinity."]


# (10) ReduceLROnPlateau raised the rate to a min_lr above it; seeds from 2**32 repeated
# smaller seeds' numbers (2**63: a traceback); with checkpoint_every_steps the epoch time
# counted only what followed the epoch's last save.

@pytest.mark.parametrize("min_lr,lrs", [(1.0, [1e-3, 1e-3, 1e-3]),  # before: 1e-3, 1.0, 1.0
                                        (3e-4, [1e-3, 1e-3, 3e-4])])  # Keras: max(lr*f, min)
def test_reduce_on_plateau_never_raises_the_rate(tmp_path, mock_mnist, min_lr, lrs):
  """No epoch improves val_loss by min_delta 10, so every plateau of patience 1 reduces."""
  c = tiny_config(**{"num_epochs": 3, "reduce_on_plateau.enabled": True,
                     "reduce_on_plateau.patience": 1, "reduce_on_plateau.min_delta": 10.0,
                     "reduce_on_plateau.min_lr": min_lr})
  main.run(c, str(tmp_path))
  assert [h["lr"] for h in read_history(tmp_path)] == pytest.approx(lrs, rel=1e-6)


@pytest.mark.parametrize("seed", [2**32, 2**63, -1])
def test_seeds_outside_32_bits_are_refused(tmp_path, seed):
  workdir = tmp_path / "run"
  r = _run("-m", "digitjax.main", "--config=tests/tiny_config.py", f"--workdir={workdir}",
           f"--config.seed={seed}")
  assert r.returncode == 2, r.stderr
  assert r.stderr == (f"error: invalid config:\n  config.seed={seed} must be a whole number "
                      "in [0, 2**32): JAX's seeds are 32-bit, so 2**32 and above would "
                      "repeat the numbers of a smaller seed (2**32 those of seed 0).\n")
  assert not workdir.exists()
  assert validation.validate(tiny_config(seed=2**32 - 1)) == []
  assert validation.validate(tiny_config(seed=2**32 - 2, num_seeds=3)) == [
      "config.seed=4294967294 with config.num_seeds=3 trains seeds up to 4294967296; they "
      "must stay below 2**32 (4294967296)."]


def test_epoch_time_counts_the_whole_epoch_with_checkpoints_within_it(tmp_path, mock_mnist):
  """5 steps (540 mock images), a save after step 4: before, the epoch's time was step 5
  and the evaluation only, not the compilation and the 4 steps before the save."""
  results = main.run(tiny_config(num_epochs=1, checkpoint_every_steps=4), str(tmp_path))
  (record,) = read_history(tmp_path)
  assert record["time"] == pytest.approx(results["train_seconds"], abs=0.01)


# (16) ./launch.sh --slurm from a checkout whose path holds a space wrote `cd /a b/...`.

def test_slurm_script_of_a_checkout_with_spaces_in_its_path_runs(tmp_path):
  import shutil
  checkout = tmp_path / "my checkout"
  checkout.mkdir()
  shutil.copy(ROOT / "launch.sh", checkout / "launch.sh")
  shutil.copy(ROOT / "tests" / "tiny_config.py", checkout / "my config.py")
  (checkout / ".venv").symlink_to(ROOT / ".venv")  # installed: launch.sh uses it as is
  data_dir = tmp_path / "data dir"
  fake = tmp_path / "bin"
  fake.mkdir()
  (fake / "srun").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$PWD" "$TFDS_DATA_DIR" "$@"\n')
  (fake / "srun").chmod(0o755)
  env = dict(os.environ, TFDS_DATA_DIR=str(data_dir), JAX_PLATFORMS="cpu")
  env.pop("DIGITJAX_VENV", None)
  r = subprocess.run(["./launch.sh", "--slurm", "my config.py", "--config.name=it's mine"],
                     cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr
  script = checkout / "runs" / "slurm" / "my config.sbatch"
  text = script.read_text()
  assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
  assert f"\ncd {str(checkout).replace(' ', chr(92) + ' ')} || exit 1\n" in text, text
  assert "#SBATCH --job-name=digitjax-my_config\n" in text
  # the job's own shell: cd, the exported data folder and srun's arguments arrive whole
  ran = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}"))
  assert ran.returncode == 0, ran.stderr
  assert ran.stdout.splitlines() == [
      str(checkout), str(data_dir), str(checkout / ".venv" / "bin" / "python"), "-m",
      "digitjax.main", "--config=my config.py", "--config.name=it's mine"]
