"""Faults of issue #21 provoked for real: the faulty file written on disk and run through
the real command line, real signals, real training. Each says what it was before."""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, needs_mnist, tiny_config
from digitjax import config as config_lib
from digitjax import main


def _run(*args, cwd=ROOT, timeout=600):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=timeout)


def _write(path, text):
  path.write_text(textwrap.dedent(text))
  return path


def _history(workdir):
  lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
  return [json.loads(l) for l in lines]


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
      "model.hidden_units, model.hidden_activation, model.input_scale.\n"
      "  config.optimizer.learning_rat is not a field of the config; nearest valid: "
      "optimizer.learning_rate, optimizer.eps_in_sqrt, optimizer.name.\n")
  assert not workdir.exists()  # nothing computed or written
  # the runners' route (experiments.catalogue.load_config -> config.from_file)
  errors = config_lib.validate(config_lib.from_file(str(path)))
  assert len(errors) == 2 and "config.model.hiden_units is not a field" in errors[0]


def test_misspelt_field_in_a_sweep_base_is_refused(tmp_path):
  path = _write(tmp_path / "sweep_typo.py", TINY + """\
      c.model.dropuot = 0.5
      return c


    def get_sweep():
      return dict(name="typo", base=get_config(), seeds=1, axes={"seed": [0]})
  """)
  r = _run("-m", "experiments.sweep", str(path), f"--root={tmp_path / 'sweeps'}")
  assert r.returncode == 2, r.stderr
  assert ("config.model.dropuot is not a field of the config; nearest valid: "
          "model.dropout") in r.stderr
  assert "Traceback" not in r.stderr
  assert not list((tmp_path / "sweeps").rglob("*.json"))


def test_tool_groups_and_shipped_configs_have_no_unknown_fields():
  c = tiny_config()
  c.speedrun = type(c)()  # a tool's own group (config.TOOL_GROUPS) is its to check
  c.speedrun.peak_lr = 0.01
  assert config_lib.unknown_fields(c) == []
  c.modle = 3
  assert config_lib.unknown_fields(c) == [
      "config.modle is not a field of the config; nearest valid: model, model.l2."]
