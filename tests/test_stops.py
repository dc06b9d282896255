"""Issue #21, families 3, 5 and 6, provoked for real: real subprocesses and signals, real
workdirs on disk. Each test says what happened before. (Family 4, odd workdirs and
names, is the command line's: tests/test_command_line.py.)"""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ROOT, computed_history, mock_cli_env, needs_mnist, read_results

# As in a terminal: Python's own SIGINT handling (a job started in the background, as CI
# may be, inherits SIGINT ignored, and Python keeps it so).
MAIN = ("import runpy, signal\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "runpy.run_module('digitjax.main', run_name='__main__', alter_sys=True)\n")
# The same on TFDS mock data (600 random examples a split at MNIST's shapes), entered
# where main() calls run(): inside its Ctrl-C handling, where the real data is read.
MOCK_MAIN = ("import logging, signal\n"
             "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
             "from absl import app\n"
             "from digitjax import main\n"
             "logging.getLogger('absl').addFilter(  # mock_data's own deprecated call\n"
             "    lambda r: 'TensorInfo.dtype' not in r.getMessage())\n"
             "def run(*args, _run=main.run):\n"
             "  from experiments.reproduce import runner\n"
             "  with runner.mock_tfds(num_examples=600):\n"
             "    return _run(*args)\n"
             "main.run = run\n"
             "app.run(main.main, flags_parser=main.parse_flags)\n")


def _start(workdir, *args, mock=True):
  """The CLI on mock data (TFDS_DATA_DIR empty), or with mock=False on this machine's."""
  cmd = [sys.executable, "-c", MOCK_MAIN if mock else MAIN, "--config=tests/tiny_config.py",
         f"--workdir={workdir}", *args]
  env = (mock_cli_env(pathlib.Path(workdir).parent, npz=False) if mock else
         dict(os.environ, PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu"))
  return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _cli(workdir, *args, mock=True):
  proc = _start(workdir, *args, mock=mock)
  out, err = proc.communicate(timeout=600)
  return proc.returncode, out, err



def _meta(workdir, step):
  """The loop state the latest checkpoint at `step` records."""
  path = pathlib.Path(workdir) / "checkpoints" / "latest" / str(step) / "meta" / "metadata"
  return json.loads(path.read_text())



# (5) With steps_per_dispatch at least an epoch's 18 steps, each epoch is one block and
# train_epoch saved on a signal only mid-epoch (b + n < steps): SIGTERM and the first
# Ctrl-C were never acted on; a run told to stop trained every epoch and exited 0.
# (540 mock training images in batches of 30: 18 steps an epoch.)
ONE_BLOCK = ("--config.num_epochs=8", "--config.steps_per_dispatch=100",
             "--config.log_every_steps=1000", "--config.batch_size=30")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("straight")
  code, _, err = _cli(workdir, *ONE_BLOCK)
  assert code == 0, err
  # a clean run writes nothing on stderr: no TensorFlow C++ notices from reading the data
  # (oneDNN at import, TFDS's cache cut short by the subset) among the user's messages
  assert err == "", err
  return workdir


@pytest.mark.parametrize("sig", [  # one handler for both; SIGTERM: test_robustness's runs
    pytest.param(signal.SIGTERM, marks=pytest.mark.slow), signal.SIGINT], ids=lambda s: s.name)
def test_signal_with_one_block_per_epoch_stops_at_the_epoch_end_and_resumes_exactly(
    tmp_path, straight, sig):
  proc = _start(tmp_path, *ONE_BLOCK)
  for line in proc.stdout:
    if line.startswith("Epoch 1/"):
      proc.send_signal(sig)
      break
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  assert f"Received {sig.name}: saved a checkpoint at step " in err, err
  assert "Rerun the same command to resume." in err
  assert "Epoch 8/8" not in out and not (tmp_path / "results.json").exists()
  step = int(re.search(r"saved a checkpoint at step (\d+) ", err).group(1))
  epoch, rest = divmod(step, 18)  # 18 steps an epoch: stopped at an epoch's end
  meta = _meta(tmp_path, step)
  assert rest == 0 and (meta["epoch"], meta["step_in_epoch"]) == (epoch - 1, 18), meta
  # finishing that epoch (its validation) saves it again at the same step, in its place
  code, out, err = _cli(tmp_path, *ONE_BLOCK[1:], f"--config.num_epochs={epoch}")
  assert code == 0 and f"Resuming from {tmp_path}: epoch {epoch - 1}, step {step}" in out, err
  assert (_meta(tmp_path, step)["epoch"], _meta(tmp_path, step)["step_in_epoch"]) == (epoch, 0)
  code, out, err = _cli(tmp_path, *ONE_BLOCK)
  assert code == 0, err
  assert "Resuming from" in out
  assert computed_history(tmp_path) == computed_history(straight)
  assert read_results(tmp_path)["test_loss"] == read_results(straight)["test_loss"]


# (6) A Ctrl-C that Python delivered inside a gc callback (JAX's _xla_gc_callback runs
# at every collection) was printed as "Exception ignored in: <function _xla_gc_callback>
# KeyboardInterrupt" and lost: the run went on to its end and exited 0.

SPIN = textwrap.dedent("""\
    import contextlib, gc, os, random, signal, sys, threading, time
    import jax.numpy as jnp  # installs _xla_gc_callback
    from digitjax import ctrl_c
    signal.signal(signal.SIGINT, signal.default_int_handler)
    guarded, rounds, caught = sys.argv[1] == "guard", int(sys.argv[2]), 0
    x = jnp.ones(3)

    def kill(go, sent):  # a real SIGINT at a random moment once the loop has begun
      go.wait()
      time.sleep(random.uniform(0, 0.05))
      os.kill(os.getpid(), signal.SIGINT)
      sent.set()

    for i in range(rounds):  # the signal can only arrive inside the try below
      go, sent = threading.Event(), threading.Event()
      t = threading.Thread(target=kill, args=(go, sent))
      t.start()
      try:
        with ctrl_c.guard() if guarded else contextlib.nullcontext():
          go.set()
          t0, sent_at = time.time(), None
          while time.time() - t0 < 10:  # collect until well after the signal was sent
            gc.collect()
            if sent_at is None and sent.is_set():
              sent_at = time.time()
            if sent_at is not None and time.time() - sent_at > 0.2:
              break
      except KeyboardInterrupt:
        caught += 1
      t.join()
    print(f"caught {caught} of {rounds}")
""")


def _spin(mode, rounds):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-c", SPIN, mode, str(rounds)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)


def test_ctrl_c_in_a_gc_callback_is_never_swallowed():
  plain = _spin("plain", 3)  # the fault itself, provoked: Python swallows it
  assert "Exception ignored in: <function _xla_gc_callback" in plain.stderr, plain.stderr
  assert plain.returncode == 0 and plain.stdout.strip() != "caught 3 of 3", plain.stdout
  guarded = _spin("guard", 40)
  assert guarded.returncode == 0, guarded.stderr
  assert guarded.stdout.strip() == "caught 40 of 40"
  assert "Exception ignored" not in guarded.stderr, guarded.stderr


# (7) A Ctrl-C that cut short the import of an extension module (matplotlib's ft2font,
# imported by the final test's confusion plot) surfaced as pybind11's "ImportError:
# initialization failed": a traceback, then a crash in Python's shutdown (exit -6),
# instead of the stop message. Provoked here as pybind11 does it, at a moment we choose.

CUT_SHORT = textwrap.dedent("""\
    import os, signal, time
    from digitjax import ctrl_c
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as MAIN: not ignored

    def import_cut_short():  # an extension's init, interrupted, reports an ImportError
      try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)
      except KeyboardInterrupt:
        raise ImportError("initialization failed") from None

    try:
      with ctrl_c.guard():
        import_cut_short()
    except KeyboardInterrupt as e:
      print("stopped:", ctrl_c.last_signal, type(e.__cause__).__name__)
""")


def test_a_stop_that_surfaces_as_another_error_is_still_a_stop():
  r = subprocess.run([sys.executable, "-c", CUT_SHORT], cwd=ROOT, capture_output=True,
                     text=True, timeout=60)
  assert r.returncode == 0 and r.stdout == "stopped: SIGINT ImportError\n", r.stderr


def _interrupt_at(workdir, delay, *args):
  """The CLI, SIGINT `delay` seconds after it started; None if it ended before."""
  proc = _start(workdir, *args)
  time.sleep(delay)
  if proc.poll() is not None:
    proc.communicate()
    return None
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  return proc.returncode, out, err


def test_ctrl_c_during_start_up_and_eval_always_exits_130(tmp_path, straight):
  """Moments spread over start-up (imports, data, compiling) and --mode=eval (restore,
  test split, evaluation), each a real SIGINT to a real run."""
  t0 = time.time()
  code, _, err = _cli(straight, "--mode=eval", *ONE_BLOCK)
  assert code == 0, err
  eval_seconds = time.time() - t0
  sent = 0
  for fraction in (0.3, 0.5, 0.7):
    got = _interrupt_at(straight, fraction * eval_seconds, "--mode=eval", *ONE_BLOCK)
    if got is None or "Test (" in got[1]:  # it had finished: the signal hit its exit
      continue
    sent += 1
    code, out, err = got
    assert code == 130, (fraction, err)
    assert "Exception ignored" not in err and "Test (" not in out, err
    assert err.endswith("Stopped by Ctrl-C. What " + str(straight) + " already held is "
                        "intact; rerun the same command to resume.\n"), err
  for delay in (1.5, 0.6 * eval_seconds):  # training's start-up: before the first epoch
    got = _interrupt_at(tmp_path / "new", delay, *ONE_BLOCK)
    if got is None:
      continue
    sent += 1
    code, out, err = got
    if "Received SIGINT: saved a checkpoint" in err:  # training had begun (on a loaded
      assert code == 0, err                          # machine, before any epoch line)
      continue
    assert code == 130, (delay, err)
    assert "Exception ignored" not in err and "Traceback" not in err, err
  assert sent >= 2


def test_sigterm_and_sighup_outside_the_training_loop_stop_with_a_message_and_exit_0(
    tmp_path, straight):
  """Between the model summary and the first step (compiling), and in --mode=eval, a
  SIGTERM or SIGHUP killed the run silently (rc -15/-1): it is now the same clean stop
  as in training, a message and exit 0, nothing lost. (SIGTERM at start-up, SIGHUP in
  eval: both go through the one handler, ctrl_c.guard.)"""
  sig = signal.SIGTERM
  proc = _start(tmp_path / "new", *ONE_BLOCK)
  for line in proc.stdout:
    if line.startswith("Non-trainable params"):  # the summary's end: compiling next
      proc.send_signal(sig)
      break
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err
  assert (f"Stopped by {sig.name}. What {tmp_path / 'new'} already held is intact" in err
          or f"Received {sig.name}: saved a checkpoint" in err), err  # (training had begun)
  assert "Traceback" not in err
  sig = signal.SIGHUP
  proc = _start(straight, "--mode=eval", *ONE_BLOCK)
  time.sleep(4)  # imports done, evaluating (a tiny eval takes 8-15 s here)
  proc.send_signal(sig)
  out, err = proc.communicate(timeout=120)
  if "Test (" not in out:  # not already finished
    assert proc.returncode == 0 and f"Stopped by {sig.name}." in err, err
  assert "Traceback" not in err


# (3) A test split typo was reported only after the whole run, a batch size over the
# training examples after config.json was written; the corrected command was then refused
# as "a run of a different config".

# Split names and slices are checked against real MNIST's splits (mock data has any split,
# of 600 examples whatever the slice); the batch size against mock data's training images.
@pytest.mark.parametrize("override,message,mock", [
    pytest.param("--config.dataset.test_split=tset",
                 "dataset 'mnist' has no split 'tset'; it has ", False, marks=needs_mnist),
    pytest.param("--config.dataset.test_split=test[90%:90%]",
                 "split 'test[90%:90%]' of dataset 'mnist' holds no examples (a slice whose "
                 "end is not after its start is empty); its splits are ", False,
                 marks=needs_mnist),
    pytest.param("--config.dataset.test_split=test[80%:20%]",  # TFDS counts -6000: not damage
                 "split 'test[80%:20%]' of dataset 'mnist' holds no examples", False,
                 marks=needs_mnist),
    ("--config.batch_size=5000", "600 training examples with validation_fraction=0.1 "
                                 "leave 540 to train and 60 to validate; batch_size=5000", True),
    pytest.param("--config.dataset.validation_split=test[:0]",
                 "split 'test[:0]' of dataset 'mnist' holds no examples", False,
                 marks=needs_mnist)])
def test_data_checks_run_before_anything_is_written(tmp_path, override, message, mock):
  workdir = tmp_path / "run"
  code, out, err = _cli(workdir, override, mock=mock)
  assert code == 2, err
  assert err.splitlines() == [err.splitlines()[0]] and message in err, err
  assert "Epoch" not in out and not workdir.exists()


@needs_mnist
def test_the_corrected_command_runs_where_a_data_check_failed(tmp_path):
  workdir = tmp_path / "run"
  workdir.mkdir()  # an existing, empty workdir: it stays without config.json
  code, _, err = _cli(workdir, "--config.dataset.test_split=tset", "--config.num_epochs=1",
                      mock=False)
  assert code == 2 and "has no split 'tset'" in err, err
  assert list(workdir.iterdir()) == []
  code, out, err = _cli(workdir, "--config.num_epochs=1", mock=False)
  assert code == 0, err
  assert "Epoch 1/1" in out and (workdir / "results.json").exists()
