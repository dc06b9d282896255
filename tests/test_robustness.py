"""Faults provoked for real: signals to a subprocess, damaged checkpoints, NaN loss."""
import os
import signal
import subprocess
import sys

import pytest

from conftest import (ROOT, computed_history, npz_data, read_history, read_results,
                      tiny_config)
from digitjax import main


@pytest.fixture(scope="module", autouse=True)
def _npz_data(tmp_path_factory):
  """Random MNIST-shaped .npz splits (600 examples each), read through $DIGITJAX_NPZ_DIR
  in this process and in the CLI's: these faults are in the plumbing, and the CLI then
  starts without TensorFlow."""
  with npz_data(tmp_path_factory.mktemp("npz")):
    yield


# digitjax.main's command line
MAIN = ("-m", "digitjax.main")
# the same, with SIGHUP at its default, as from a terminal, even when pytest itself runs
# under nohup (whose ignored SIGHUP a child inherits and training rightly keeps). Reset
# in the child's first line, not by a preexec_fn: that would fork this JAX-threaded
# process into Python code (JAX's "os.fork() was called" warning).
FROM_A_TERMINAL = ("-c", "import runpy, signal\n"
                   "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
                   "runpy.run_module('digitjax.main', run_name='__main__', alter_sys=True)\n")


def _cli(workdir, *overrides, wait=True):
  cmd = [sys.executable, *FROM_A_TERMINAL, "--config=tests/tiny_config.py",
         f"--workdir={workdir}", *overrides]
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  if wait:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err
  return proc




# 1 epoch = 180 steps of 3 (540 training images); a signal lands mid-epoch almost surely.
# Host checks every step so a signal is handled at once; kill -9 loses the work since the
# last checkpoint.
ARGS = ("--config.num_epochs=3", "--config.batch_size=3",
        "--config.log_every_steps=1", "--config.checkpoint_every_steps=50")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("straight")
  code, _, err = _cli(workdir, *ARGS)
  assert code == 0, err
  assert err == "", err  # a clean run writes nothing on stderr (TFDS's way: test_stops)
  return workdir


def _interrupt_after_first_epoch(workdir, sig):
  """(exit code, stdout, stderr) of a run sent `sig` just after its first epoch."""
  proc = _cli(workdir, *ARGS, wait=False)
  for line in proc.stdout:  # at once: the tiny run's last two epochs can take < 0.5 s
    if line.startswith("Epoch 1/"):
      proc.send_signal(sig)
      break
  out, err = proc.communicate(timeout=300)
  return proc.returncode, out, err


@pytest.mark.parametrize("sig", [  # one handler for SIGINT, SIGTERM and SIGHUP: SIGINT's
    # exact resume is tests/test_stops.py's, SIGTERM's save and resume the busy workdir's
    pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, marks=pytest.mark.slow), signal.SIGHUP,
    signal.SIGKILL], ids=lambda sig: sig.name)
def test_interrupted_run_resumes_exactly(tmp_path, straight, sig):
  """SIGHUP is a closed terminal: before, it killed the run with no checkpoint."""
  for attempt in range(3):
    run = tmp_path / f"try{attempt}"
    code, out, err = _interrupt_after_first_epoch(run, sig)
    if sig == signal.SIGKILL or code != 0 or "Received" in err:
      break  # else the run ended before the signal landed (a loaded machine): again
  if sig == signal.SIGKILL:
    assert code == -signal.SIGKILL
  else:
    assert code == 0, err
    assert f"Received {sig.name}: saved a checkpoint" in err
  assert not (run / "results.json").exists()
  code, out, err = _cli(run, *ARGS)
  assert code == 0, err
  assert "Resuming from" in out
  assert computed_history(run) == computed_history(straight)
  assert read_results(run)["test_loss"] == read_results(straight)["test_loss"]


def test_sighup_leaves_a_run_started_under_nohup_going(tmp_path, straight):
  """nohup (here bash's `trap "" HUP`, as nohup does) ignores SIGHUP so that closing the
  terminal leaves the run going: training must keep it ignored, not checkpoint and stop."""
  cmd = ["bash", "-c", 'trap "" HUP && exec "$@"', "bash", sys.executable, *MAIN,
         "--config=tests/tiny_config.py", f"--workdir={tmp_path}", *ARGS]
  proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  for line in proc.stdout:
    if line.startswith("Epoch 1/"):
      proc.send_signal(signal.SIGHUP)
      break
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0 and "Received SIGHUP" not in err, err
  assert "Epoch 3/3" in out
  assert computed_history(tmp_path) == computed_history(straight)


def test_a_second_run_on_a_busy_workdir_is_refused_and_changes_nothing(tmp_path):
  """Two trainings on one workdir would interleave checkpoints and metrics: the second
  (and --fresh, which would move the folder from under the first) is refused."""
  long_run = (*ARGS[1:3], "--config.num_epochs=500")  # stopped below, long before the end
  proc = _cli(tmp_path, *long_run, wait=False)
  for line in proc.stdout:
    if line.startswith("Epoch 1/"):
      break
  proc.send_signal(signal.SIGSTOP)  # it holds its lock, and leaves the CPU to the others
  for extra in ([], ["--fresh"]):
    code, out, err = _cli(tmp_path, *long_run, *extra)
    assert code == 2, err
    assert f"workdir {tmp_path} is in use by another run (pid {proc.pid} on" in err
    assert "Traceback" not in err and "Resuming" not in out
  proc.send_signal(signal.SIGCONT)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0 and "Received SIGTERM" in err, err
  assert not list(tmp_path.parent.glob(tmp_path.name + ".old-*"))  # --fresh moved nothing
  epochs = len(read_history(tmp_path))
  assert [h["epoch"] for h in read_history(tmp_path)] == list(range(1, epochs + 1))
  code, out, err = _cli(tmp_path, *ARGS[1:3], f"--config.num_epochs={epochs + 1}")
  assert code == 0 and "Resuming from" in out, err  # the lock went with its process


def _cli_with_small_files(workdir, *overrides):
  """The CLI where no file may outgrow 20 kB (ulimit -f; SIGXFSZ ignored): writes past it
  fail with EFBIG, as on a full disk with ENOSPC. A tiny checkpoint's data file is ~130 kB.
  bash sets the limit, so this (JAX-threaded) process does not fork into Python code."""
  cmd = ["bash", "-c", 'ulimit -f 20 && trap "" XFSZ && exec "$@"', "bash",
         sys.executable, *MAIN, "--config=tests/tiny_config.py",
         f"--workdir={workdir}", *overrides]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_full_disk_is_one_message_and_the_run_resumes(tmp_path):
  """Before: ~400 lines of orbax tracebacks from its writer threads."""
  straight = main.run(tiny_config(num_epochs=2), str(tmp_path / "straight"))
  workdir = tmp_path / "run"
  main.run(tiny_config(num_epochs=1), str(workdir))
  r = _cli_with_small_files(workdir, "--config.num_epochs=2")
  assert r.returncode == 2, r.stderr
  assert r.stderr.splitlines() == [
      f"error: could not save the best checkpoint at step 10 in {workdir}/checkpoints/best "
      "(File too large). The checkpoints saved before it are intact: free disk space and "
      "rerun the same command to resume from the last of them."]
  resumed = main.run(tiny_config(num_epochs=2), str(workdir))  # space freed
  assert resumed["test_loss"] == straight["test_loss"]
  assert computed_history(workdir) == computed_history(tmp_path / "straight")
  # writing the plots of a finished run fails the same way: one line, nothing lost
  (workdir / "confusion_matrix.png").unlink()
  r = _cli_with_small_files(workdir, "--config.num_epochs=2")
  assert r.returncode == 2 and r.stderr.splitlines() == [
      f"error: could not write in {workdir} (File too large). What it held before is "
      "intact: free disk space and rerun the same command to resume."], r.stderr
  assert read_results(workdir)["test_loss"] == straight["test_loss"]


def test_half_written_step_directory_is_ignored(tmp_path, straight):
  """A save killed mid-write leaves a step folder without its commit marker."""
  import shutil
  shutil.copytree(straight, tmp_path / "run", symlinks=True)
  latest = tmp_path / "run" / "checkpoints" / "latest"
  newest = max(latest.iterdir(), key=lambda p: int(p.name))
  half = latest / str(int(newest.name) + 7)
  shutil.copytree(newest, half)
  for marker in half.rglob("commit_success.txt"):
    marker.unlink()
  for p in (half / "state").rglob("manifest.ocdbt"):
    p.unlink()
  code, out, err = _cli(tmp_path / "run", *ARGS[:3], "--config.num_epochs=4")
  assert code == 0, err
  assert newest.exists()  # the good checkpoint was used and kept
  assert len(read_history(tmp_path / "run")) == 4


def test_damaged_metadata_is_reported_once(tmp_path, straight):
  """Every file of the newest step truncated, metadata included: orbax logs an ERROR per
  metadata file it reads (several times over); the user sees our one warning instead."""
  import shutil
  shutil.copytree(straight, tmp_path / "run", symlinks=True)
  latest = tmp_path / "run" / "checkpoints" / "latest"
  newest = max(latest.iterdir(), key=lambda p: int(p.name))
  for p in [p for p in newest.rglob("*") if p.is_file()]:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
  code, out, err = _cli(tmp_path / "run", *ARGS[:3], "--config.num_epochs=4")
  assert code == 0, err
  assert f"latest checkpoint at step {newest.name} is unreadable" in err
  assert "Failed to json parse" not in err and "Traceback" not in err
  assert len(read_history(tmp_path / "run")) == 4


# A failed orbax restore leaves tensorstore callbacks that hit a closed event loop; they
# must not reach the user as tracebacks (here: as unraisable-exception warnings).
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_latest_checkpoint_falls_back_to_previous(tmp_path, damage, capfd):
  straight = main.run(tiny_config(num_epochs=3), str(tmp_path / "straight"))
  workdir = tmp_path / "damaged"
  main.run(tiny_config(num_epochs=2), str(workdir))
  latest = workdir / "checkpoints" / "latest"
  newest = max(latest.iterdir(), key=lambda p: int(p.name))
  files = [p for p in (newest / "state").rglob("*") if p.is_file()]
  for p in files:
    if damage == "truncate":
      p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif p.name == "manifest.ocdbt" or p.parent.name == "d":
      p.unlink()
  capfd.readouterr()
  resumed = main.run(tiny_config(num_epochs=3), str(workdir))
  err = capfd.readouterr().err
  assert f"latest checkpoint at step {newest.name} is unreadable" in err
  assert "Traceback" not in err and "Event loop is closed" not in err
  assert resumed["test_loss"] == straight["test_loss"]
  assert computed_history(workdir) == computed_history(tmp_path / "straight")


def test_nan_loss_exits_nonzero_with_step_and_keeps_checkpoint(tmp_path):
  """An absurd learning rate: step 1 is finite (and checkpointed), step 2 explodes."""
  code, out, err = _cli(tmp_path, "--config.optimizer.name=sgd",
                        "--config.optimizer.learning_rate=1e30",
                        "--config.checkpoint_every_steps=1", "--config.log_every_steps=1")
  assert code == 2, err
  assert "non-finite loss or gradient at step 2 (epoch 1, batch 2)" in err
  assert "Traceback" not in err
  assert [p.name for p in (tmp_path / "checkpoints" / "latest").iterdir()] == ["1"]
  from digitjax import checkpoints, trainer as trainer_lib
  c = tiny_config(**{"optimizer.name": "sgd", "optimizer.learning_rate": 1e30})
  ckpts = checkpoints.Checkpoints(str(tmp_path))
  state, meta = ckpts.restore_latest(trainer_lib.Trainer(c, 5).abstract_state())
  assert int(state.step[0]) == 1 and meta["step_in_epoch"] == 1
  ckpts.close()


def test_skip_mode_that_skips_most_steps_stops_instead_of_finishing(tmp_path):
  """on_nonfinite=skip with an absurd learning rate: step 1 sends the parameters to
  infinity, every later step is non-finite and skipped. Before, the run finished and
  reported test figures of those parameters; now the epoch line shows the skipped steps
  and the run stops there with one message, exit 2, no results."""
  code, out, err = _cli(tmp_path, "--config.optimizer.name=sgd",
                        "--config.optimizer.learning_rate=1e30",
                        "--config.on_nonfinite=skip")
  assert code == 2, err
  epoch_lines = [l for l in out.splitlines() if l.startswith("Epoch ")]
  assert len(epoch_lines) == 1 and epoch_lines[0].startswith("Epoch 1/2 ")
  assert epoch_lines[0].endswith(" lr 1e+30 skipped 4"), epoch_lines
  assert err.splitlines() == [
      "error: skipped 4 of the 5 steps of epoch 1 for a non-finite loss or gradient "
      "(on_nonfinite=skip): more than half, so training stopped rather than finish on "
      f"parameters that no longer learn. The checkpoints saved in {tmp_path} before it "
      "are kept. Lower the learning rate."]
  assert not (tmp_path / "results.json").exists()
