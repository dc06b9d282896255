"""The live progress line: it says it is compiling before the first block is back, then
shows loss, accuracy, speed and ETAs in 80 columns; off a terminal it prints nothing."""
import io
import re

from rich.console import Console

from digitjax import progress


def _terminal(monkeypatch):
  out = io.StringIO()
  console = Console(file=out, force_terminal=True, width=80, color_system=None)
  monkeypatch.setattr(progress, "_console", lambda: console)
  monkeypatch.setattr(progress, "_compiled", False)
  return out


def test_line_says_compiling_then_shows_figures_in_80_columns(monkeypatch):
  out = _terminal(monkeypatch)
  with progress.EpochProgress(12, 150, 421, last_epoch_seconds=30.0) as bar:
    first = out.getvalue()
    bar.t0 -= 20  # the first block took 20 s: 15 steps/s
    bar.update(300, 0.40123, 0.871)
    after = out.getvalue()[len(first):]
  assert "compiling" in first and "Epoch 12/150" in first
  assert "300/421" in after and "loss 0.4012 acc 87.1% 15 it/s ETA 0:08" in after
  shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # less the terminal codes
  lines = [l for chunk in shown.split("\r") for l in chunk.split("\n")]
  assert max(len(l.rstrip()) for l in lines) <= 80
  with progress.EpochProgress(13, 150, 421) as bar:  # compiled now: no such claim
    assert "compiling" not in out.getvalue().rsplit("Epoch 13/150", 1)[-1]


def test_nothing_is_printed_off_a_terminal(capsys):
  with progress.EpochProgress(1, 2, 10) as bar:  # pytest captures stdout: not a tty
    bar.update(5, 1.0, 0.5)
  assert capsys.readouterr().out == ""


def test_clock_is_short():
  assert progress._clock(None) == "-:--"
  assert progress._clock(307) == "5:07"
  assert progress._clock(3723) == "1:02:03"
