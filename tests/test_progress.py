"""The live progress line: on a terminal only; piped output keeps one line per epoch."""
import os
import pty
import subprocess
import sys
import time

from conftest import MOCK_MAIN, MOCK_TINY, ROOT, mock_cli, mock_cli_env

BAR = "━"


def test_off_a_terminal_one_line_per_epoch_and_no_bar(tmp_path):
  # FORCE_COLOR, as some CI sets, makes rich take a pipe for a terminal: still no bar
  r = mock_cli(tmp_path, *MOCK_TINY, f"--workdir={tmp_path / 'run'}", FORCE_COLOR="1")
  assert r.returncode == 0, r.stderr
  epochs = [l for l in r.stdout.splitlines() if l.startswith("Epoch ")]
  assert [l.split(" - ")[0] for l in epochs] == ["Epoch 1/2", "Epoch 2/2"]
  for text in (r.stdout, r.stderr):
    assert BAR not in text and "\r" not in text and "\x1b" not in text
    assert "steps/s" not in text and "ETA" not in text


def _run_on_a_pty(args, env, timeout=300) -> tuple[int, str]:
  """Runs args with a pseudo-terminal as stdin, stdout and stderr; (exit code, output)."""
  master, slave = pty.openpty()
  proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave)
  os.close(slave)
  out, deadline = b"", time.time() + timeout
  while time.time() < deadline:
    try:
      chunk = os.read(master, 65536)
    except OSError:  # EIO: the child closed the terminal
      break
    if not chunk:
      break
    out += chunk
  os.close(master)
  return proc.wait(timeout=30), out.decode(errors="replace")


def test_on_a_terminal_a_live_line_with_steps_and_eta(tmp_path):
  env = mock_cli_env(tmp_path, TERM="xterm", COLUMNS="200")
  code, out = _run_on_a_pty(
      [sys.executable, "-c", MOCK_MAIN, *MOCK_TINY, f"--workdir={tmp_path / 'run'}"], env)
  assert code == 0, out[-3000:]
  assert BAR in out
  live = [l for l in out.replace("\r\n", "\n").split("\r") if "steps/s" in l]
  assert any(" 4/10" in l and "ETA epoch 0:00:" in l and ", run " in l for l in live), live
  assert any("Epoch 2/2" in l and "10/10" in l for l in live), live
  # the live line is transient: each epoch still ends in its Keras-style line
  assert out.count("Epoch 1/2 - ") == 1 and out.count("Epoch 2/2 - ") == 1
