"""The command line's own mistakes: one message on stderr, exit 2, nothing written.

A mistyped override, a missing or failing config file, a stray argument, a flag of
another mode: each says what was wrong and what to do (digitjax.main and
digitjax.config_flag); the experiment tools answer their own bad input the same way.
"""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, tiny_config
from digitjax import main
from digitjax.errors import UserError


def _cli(*args, cwd=ROOT):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))  # this checkout's
  return subprocess.run([sys.executable, "-m", "digitjax.main", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,message", [
    (["--config.model.name=nope"], "model.name='nope' is not known"),
    (["--config.optimizer.learning_rate=-1"], "learning_rate=-1.0 is out of range"),
    (["--config.no_such_field=1"], "no_such_field"),
    (["--config.seed=abc"], "seed"),
    (["--config.modell.x=1"], "no field 'modell'. Did you mean \"model\" instead of "
                              "\"modell\"? Check the --config.* overrides"),
])
def test_cli_bad_input_is_one_message_on_stderr(tmp_path, args, message):
  r = _cli("--config=configs/cnn_bn.py", f"--workdir={tmp_path}", *args)
  assert r.returncode == 2
  assert message in r.stderr, r.stderr  # the modell case: one line, where it was two
  assert r.stderr.startswith("error: ") and r.stderr.count("error:") == 1, r.stderr
  assert "Traceback" not in r.stderr + r.stdout


def test_unknown_config_variant_is_one_message_listing_the_variants(tmp_path):
  r = _cli("--config=configs/report_b.py:b7", f"--workdir={tmp_path}")
  assert r.returncode == 2
  assert "configs/report_b.py has no variant 'b7'; it has b1_keras_mlp" in r.stderr
  assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("args", [
    ["--config=configs/cnn_bnn.py"],
    ["--config=configs/cnn_bnn.py", "--config.seed=3"],
    ["--config", "configs/cnn_bnn.py:variant"],
])
def test_missing_config_file_is_one_message(tmp_path, args):
  r = _cli(*args, f"--workdir={tmp_path}")
  assert r.returncode == 2, r.stderr
  assert "error: config file configs/cnn_bnn.py not found" in r.stderr
  assert "Traceback" not in r.stderr + r.stdout


# --- the command line's own mistakes: one line on stderr, exit 2, nothing written -------

_EXITS = "import sys\nsys.exit(0)\n"
_PARTIAL = ("import ml_collections\n"
            "def get_config():\n  return ml_collections.ConfigDict({'seed': 1})\n")
_COUNTS = ("import os\nfrom digitjax import config as base\n"
           "open(os.environ['RUNS_FILE'], 'a').write('x')\n"
           "def get_config():\n  c = base.get_config()\n  c.num_epochs = 0\n  return c\n")


@pytest.mark.parametrize("args,files,message", [
    (["--config={ROOT}/configs/cnn_bn.py", "stray"], {}, "unexpected argument(s) stray"),
    (["--config={ROOT}/configs/cnn_bn.py", "--workdir="], {}, "--workdir is empty"),
    (["--config={ROOT}/configs/cnn_bn.py", "--eval_split=test[:5%]"], {},
     "go with --mode=eval"),
    (["--mode=predict", "--images=", "--workdir=w"], {}, "--mode=predict needs --images"),
    (["--config=c.py"], {"c.py": _EXITS}, "c.py called sys.exit(0) while it was read"),
    (["--config=c.py"], {"c.py": _PARTIAL}, "returned a config without 60 of the schema's"),
    (["--config=c.py", "--config.seed=3"], {"c.py": _COUNTS}, "num_epochs=0 is out of range"),
])
def test_command_line_mistakes_are_one_line_and_exit_2(args, files, message, tmp_path):
  for name, text in files.items():
    (tmp_path / name).write_text(text)
  env = dict(os.environ, RUNS_FILE=str(tmp_path / "runs_of_the_file"))
  args = [a.replace("{ROOT}", str(ROOT)) for a in args]
  r = subprocess.run([sys.executable, "-m", "digitjax.main", *args], cwd=tmp_path, env=env,
                     capture_output=True, text=True, timeout=120)
  assert r.returncode == 2 and r.stderr.count("error:") == 1, r.stderr  # (a config's
  assert r.stderr.startswith("error: ") and message in r.stderr, r.stderr  # errors: 1 a line)
  assert r.stdout == "" and "Traceback" not in r.stderr
  counted = files.get("c.py") == _COUNTS
  if counted:
    assert (tmp_path / "runs_of_the_file").read_text() == "x"  # the file ran once
  assert sorted(os.listdir(tmp_path)) == sorted(  # nothing written
      [*files, *(["runs_of_the_file"] if counted else [])])


def test_a_tilde_workdir_is_the_home_folders(tmp_path):
  env = dict(os.environ, HOME=str(tmp_path))
  r = subprocess.run([sys.executable, "-m", "digitjax.main", "--config=tests/tiny_config.py",
                      "--workdir=~/my_run", "--mode=eval"], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=120)
  assert r.returncode == 2 and f"nothing to evaluate in {tmp_path}/my_run" in r.stderr
  assert not (ROOT / "~").exists()


@pytest.mark.parametrize("args,message", [
    (["experiments.compare", "{tmp}", "B6", "--metric", "test_loss"],
     "row B6 gives the accuracy (%) its report published, not test_loss"),
    (["experiments.compare", "{tmp}", "{tmp}", "--metric", "test_acc"],
     "--metric 'test_acc' is not a figure a run reports"),
    (["experiments.reproduce", "--report", "B", "--rows", ",", "--out", "{tmp}/tables"],
     "--rows ',' names no row"),
])
def test_experiment_tools_refuse_what_they_cannot_answer(args, message, tmp_path):
  import json
  (tmp_path / "results.json").write_text(json.dumps(
      {"per_seed": [{"seed": 0, "test_loss": 0.03, "test_accuracy": 0.99}]}))
  args = [a.replace("{tmp}", str(tmp_path)) for a in args]
  r = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                     text=True, timeout=120)
  assert r.returncode == 2 and r.stderr.count("error:") == 1 and message in r.stderr, r.stderr
  assert "Traceback" not in r.stderr and r.stdout == ""
  assert os.listdir(tmp_path) == ["results.json"]


def test_workdir_that_is_a_file_is_refused_and_left_alone(tmp_path):
  notes = tmp_path / "notes.txt"
  notes.write_text("keep me")
  r = _cli("--config=tests/tiny_config.py", f"--workdir={notes}")
  assert r.returncode == 2, r.stderr
  assert f"--workdir {notes} is a file, not a folder" in r.stderr
  assert "Traceback" not in r.stderr + r.stdout
  assert notes.read_text() == "keep me"
  r = _cli("--config=tests/tiny_config.py", f"--workdir={notes}/run")
  assert r.returncode == 2, r.stderr
  assert "cannot create the workdir" in r.stderr and "Traceback" not in r.stderr


def test_another_models_field_is_one_line_naming_the_models_fields():
  """flowers_cnn's batch_norm on the MLP: ml_collections alone would say only that the
  config has no such field (validation.unknown_fields, through digitjax.config_flag)."""
  r = _cli("--config=tests/tiny_config.py", "--config.model.batch_norm=True")
  assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
  assert r.stderr == ("error: --config.model.batch_norm=True: config.model.batch_norm is "
                      "not a field of model 'mlp'; its fields: name, hidden_units, "
                      "hidden_activation, output_activation, dropout, l2, conv_impl, init.\n")


# Issue #21, family 4: --fresh with --mode=eval set the trained run aside, then found
# nothing to evaluate; an empty config.name trained into runs/ itself (and --fresh moved
# all of runs/ aside); odd --workdir forms ended in tracebacks from os.rename or orbax.

def test_fresh_with_eval_is_refused_and_moves_nothing(tmp_path):
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "notes.txt").write_text("keep")
  for mode in ("eval", "predict"):
    r = _cli("--config=tests/tiny_config.py", f"--workdir={tmp_path}/run", f"--mode={mode}",
             "--fresh", "--images=x.png")
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"error: --fresh goes with --mode=train only: --mode={mode} never moves a run "
        "aside. Drop --fresh."], r.stderr
  with pytest.raises(UserError, match="--fresh goes with --mode=train only"):
    main.run(tiny_config(), str(tmp_path / "run"), mode="eval", fresh=True)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
  assert (tmp_path / "run" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("name", ["", "  ", ".", "..", "a/../..", "/abs", "a//b"])
def test_a_name_that_is_not_a_folder_under_runs_is_refused(tmp_path, name):
  (tmp_path / "runs" / "old").mkdir(parents=True)
  r = _cli(f"--config={ROOT}/tests/tiny_config.py", f"--config.name={name}", "--fresh",
           cwd=tmp_path)
  assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
  assert r.stderr.startswith(f"error: config.name={name!r} cannot name a run's folder"), r.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
  assert [p.name for p in (tmp_path / "runs").iterdir()] == ["old"]


def _one_line(e):
  assert "\n" not in str(e.value), str(e.value)
  return str(e.value)


@pytest.mark.parametrize("mode,fresh", [("train", False), ("train", True), ("eval", False)])
def test_odd_workdirs_are_one_line_and_nothing_moves(tmp_path, mode, fresh):
  run = tmp_path / "run"
  (run / "kept").mkdir(parents=True)
  (tmp_path / "loop").symlink_to(tmp_path / "loop")
  (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
  (tmp_path / "notes.txt").write_text("keep me")
  blocked = tmp_path / "blocked"
  blocked.mkdir()
  (blocked / "checkpoints").write_text("not a folder")
  cases = {f"{run}/.": "ends in '.'", f"{run}/..": "ends in '..'",
           str(tmp_path / "loop"): "Too many levels of symbolic links",
           str(tmp_path / "loop" / "sub"): "Too many levels of symbolic links",
           str(tmp_path / "gone"): "is a symbolic link to nothing",
           str(tmp_path / "notes.txt"): "is a file, not a folder",
           str(tmp_path / "notes.txt" / "sub"): "Not a directory",
           str(blocked): "checkpoints is a file, not a folder"}
  before = sorted(str(p) for p in tmp_path.rglob("*"))
  for workdir, message in cases.items():
    with pytest.raises(UserError) as e:
      main.run(tiny_config(), workdir, mode=mode, fresh=fresh)
    assert message in _one_line(e), (workdir, str(e.value))
  assert sorted(str(p) for p in tmp_path.rglob("*")) == before
  assert (tmp_path / "notes.txt").read_text() == "keep me"
