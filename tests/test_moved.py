"""The command names experiments/ had before its folders keep working for one release: each
old module runs the new one with the same arguments and exit status, after one line on
stderr saying where it went (experiments/_moved.py)."""
import importlib.util
import re
import subprocess
import sys

import pytest

from conftest import ROOT

OLD = sorted(p for p in (ROOT / "experiments").glob("*.py") if "_moved.run(" in p.read_text())


def test_every_old_name_points_at_a_module_that_exists():
  assert len(OLD) == 10, [p.name for p in OLD]
  for path in OLD:
    old, new = re.search(r'_moved\.run\("([\w.]+)", "([\w.]+)"\)', path.read_text()).groups()
    assert old == f"experiments.{path.stem}"
    assert importlib.util.find_spec(new) is not None, f"{old} -> {new}: no such module"
    assert f"`python -m {new}`" in path.read_text()  # its docstring says where it went


def test_an_old_name_runs_the_new_command_with_its_arguments_and_exit_status(tmp_path):
  (tmp_path / "notes").mkdir()
  new = subprocess.run([sys.executable, "-m", "experiments.list_runs", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
  old = subprocess.run([sys.executable, "-m", "experiments.runs", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
  assert old.returncode == new.returncode == 0 and old.stdout == new.stdout
  assert old.stderr == ("experiments.runs moved to experiments.list_runs; this name goes in "
                        "the next release\n")
  missing = subprocess.run([sys.executable, "-m", "experiments.runs", str(tmp_path / "nope")],
                           cwd=ROOT, capture_output=True, text=True)
  assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_a_sweep_file_named_by_its_old_path_is_found_in_its_new_folder(monkeypatch, capsys):
  from experiments.sweep import run

  monkeypatch.chdir(ROOT)
  assert run.moved_spec("experiments/sweeps/hidden_units.py") == (
      "experiments/sweep/specs/hidden_units.py")
  assert "experiments/sweeps/ moved to experiments/sweep/specs/" in capsys.readouterr().err
  for path in ("experiments/sweep/specs/hidden_units.py", "experiments/sweeps/nosuch.py"):
    assert run.moved_spec(path) == path  # found as given, or nowhere: the usual error
  assert capsys.readouterr().err == ""


@pytest.mark.parametrize("old", ["experiments.sweep", "experiments.reproduce"])
def test_launch_sh_commands_keep_their_module_names(old):
  """`./launch.sh sweep|reproduce` run these: packages now, whose __main__ is the command."""
  assert importlib.util.find_spec(f"{old}.__main__") is not None
