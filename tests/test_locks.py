"""The whole install is locked: requirements.lock (the project and its test tools) and one
lock per extra, every package pinned with hashes, the locks agreeing on every package they
share; `./launch.sh extras NAME` installs an extra from its lock and a rebuild keeps it."""
import os
import re
import stat
import subprocess
import tomllib

import pytest

from conftest import ROOT

ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)",
                   re.M)


def pins(lock) -> dict[str, tuple[str, int]]:
  """name -> (version, number of hashes) of a uv-compiled lock."""
  text = (ROOT / lock).read_text()
  found = {m[1].lower(): (m[2], m[3].count("--hash=")) for m in ENTRY.finditer(text)}
  lines = [l for l in text.splitlines() if re.match(r"^[A-Za-z0-9]", l)]
  assert len(found) == len(lines), f"{lock}: an entry this test cannot read"
  return found


def extras() -> dict[str, list[str]]:
  project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  return {k: v for k, v in project["optional-dependencies"].items() if k != "test"}


def test_each_extra_has_a_lock_that_agrees_with_the_others():
  base = pins("requirements.lock")
  assert all(hashes for _, hashes in base.values())
  locks = {name: pins(f"requirements-{name}.lock") for name in extras()}
  assert sorted(p.name for p in ROOT.glob("requirements-*.lock")) == sorted(
      f"requirements-{n}.lock" for n in extras())
  for name, lock in locks.items():
    header = (ROOT / f"requirements-{name}.lock").read_text().splitlines()[1]
    assert f"--extra test --extra {name} " in header and "-c requirements.lock" in header
    assert all(hashes for _, hashes in lock.values()), name
    assert {k: v for k, v in lock.items() if k in base} == base, name  # the whole install
    for requirement in extras()[name]:  # and the extra's own packages
      assert re.split(r"[=<>\[ ]", requirement)[0].lower() in lock, (name, requirement)
  shared = set(locks["tensorboard"]) & set(locks["bench"])
  assert {k: locks["tensorboard"][k] for k in shared} == {k: locks["bench"][k] for k in shared}


SHIM = "#!/usr/bin/env bash\necho \"$*\" >> \"$LOG\"\n"  # a python that logs its arguments


@pytest.fixture
def fake_venv(tmp_path):
  """A .venv whose python only logs its arguments, set up already (its stamp is newer
  than every lock): launch.sh's pip and pytest calls are read, not run."""
  venv = tmp_path / "venv"
  (venv / "bin").mkdir(parents=True)
  python = venv / "bin" / "python"
  python.write_text(SHIM)
  python.chmod(python.stat().st_mode | stat.S_IEXEC)
  (venv / ".installed").touch()
  future = max(p.stat().st_mtime for p in ROOT.glob("requirements*.lock")) + 3600
  os.utime(venv / ".installed", (future, future))
  env = dict(os.environ, DIGITJAX_VENV=str(venv), PYTHON=str(python),
             LOG=str(tmp_path / "log"))
  (tmp_path / "log").write_text("")
  return venv, env, tmp_path / "log"


def _launch(env, *args):
  return subprocess.run(["bash", str(ROOT / "launch.sh"), *args], env=env,
                        capture_output=True, text=True, timeout=60)


def test_launch_installs_an_extra_from_its_lock_and_a_rebuild_keeps_it(fake_venv):
  venv, env, log = fake_venv
  r = _launch(env, "extras", "tensorboard")
  assert r.returncode == 0, r.stderr
  assert log.read_text() == "-m pip install -q --require-hashes -r requirements-tensorboard.lock\n"
  assert _launch(env, "extras", "tensorboard").returncode == 0
  assert (venv / ".extras").read_text() == "tensorboard\n"  # remembered once
  os.utime(venv / ".installed", (0, 0))  # a lock changed since: the venv is rebuilt
  log.write_text("")
  assert _launch(env, "test", "-q").returncode == 0
  assert [l.split(" -r ")[-1] if " -r " in l else l for l in log.read_text().splitlines()] == [
      f"-m venv {venv}", "-m pip install -q --upgrade pip", "requirements.lock",
      "requirements-tensorboard.lock", "-m pip install -q --no-deps -e .", "-m pytest -q"]


def test_an_unknown_extra_is_one_line_before_any_set_up(fake_venv, tmp_path):
  _, env, log = fake_venv
  env = dict(env, DIGITJAX_VENV=str(tmp_path / "not_made"))
  for args, message in ((["extras", "nope"], "no extra 'nope' (no requirements-nope.lock); "
                         "the extras are: bench, tensorboard"),
                        (["extras", "../requirements"], "no extra '../requirements'"),
                        (["extras"], "extras needs a name: bench, tensorboard")):
    r = _launch(env, *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
  assert log.read_text() == "" and not (tmp_path / "not_made").exists()
