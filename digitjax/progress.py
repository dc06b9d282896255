"""The live progress line of a training epoch, shown on a terminal only.

On a terminal or in Jupyter (main process), a rich progress bar shows the epoch's steps
done, the running training loss and accuracy, steps/s and the ETA of the epoch and of the
whole run, in 80 columns. Its figures move only when step metrics already reach the host
(every config.log_every_steps, at checkpoints): it adds no device sync. Its spinner turns
every second meanwhile, and until the first block of steps is back the line says that it
is compiling (the first block of a process pays for XLA's compilation). It is transient,
so the epoch's Keras-style line (digitjax.train.print_epoch) takes its place when the
epoch ends. Anywhere else (a log file, a batch job, captured output) it shows nothing at
all: those logs keep exactly one line per epoch, free of control characters.
"""
from __future__ import annotations

import sys
import time

from digitjax import distributed


_compiled = False  # whether a block of steps has come back in this process


def _console():
  """rich's console on stdout in Jupyter, or if stdout is an interactive terminal on the
  main process; else None. Off Jupyter, stdout itself must be a tty: FORCE_COLOR (set by
  some CI) makes rich treat a log as a terminal, and a log must not fill with a redrawn
  line."""
  if not distributed.is_main_process():
    return None
  from rich.console import Console

  console = Console()
  if console.is_jupyter:
    return console
  try:
    if not sys.stdout.isatty():
      return None
  except (AttributeError, ValueError):  # no isatty, or a closed stream
    return None
  return console if console.is_interactive else None


def _clock(seconds: float | None) -> str:
  """5:07 or 1:02:03; -:-- when not known yet."""
  if seconds is None:
    return "-:--"
  h, rest = divmod(round(seconds), 3600)
  m, s = divmod(rest, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class EpochProgress:
  """`with EpochProgress(...) as bar: ... bar.update(steps_done, loss)`; a no-op off a
  terminal. last_epoch_seconds (the previous epoch's time, evaluation included) sizes the
  epochs still to come; without it, they are estimated from this epoch's steps/s."""

  def __init__(self, epoch: int, num_epochs: int, steps_per_epoch: int, start: int = 0,
               last_epoch_seconds: float | None = None):
    self.epoch, self.num_epochs, self.total = epoch, num_epochs, steps_per_epoch
    self.start, self.last_epoch_seconds = start, last_epoch_seconds
    self.bar, self.task, self.first = None, None, None
    self.console = _console()

  def __enter__(self):
    if self.console is None:
      return self
    from rich import progress as rp

    self.bar = rp.Progress(
        rp.SpinnerColumn(), rp.TextColumn(f"Epoch {self.epoch}/{self.num_epochs}"),
        rp.BarColumn(bar_width=5), rp.MofNCompleteColumn(),
        rp.TextColumn("{task.fields[info]}"),
        console=self.console, transient=True, refresh_per_second=1)
    self.bar.start()
    waiting = "compiling..." if not _compiled else "training..."
    self.task = self.bar.add_task("train", total=self.total, completed=self.start,
                                  info=waiting)
    self.bar.refresh()
    self.t0 = time.monotonic()
    return self

  def update(self, steps_done: int, loss: float, accuracy: float | None = None) -> None:
    """steps_done of the epoch (from its start), the epoch's running loss and accuracy."""
    global _compiled
    _compiled = True
    if self.bar is None:
      return
    now = time.monotonic()
    if self.first is None:  # the first update pays for compilation: a rough rate only
      self.first = (now, steps_done)
      rate = (steps_done - self.start) / max(now - self.t0, 1e-9)
    else:
      t, s = self.first
      rate = (steps_done - s) / max(now - t, 1e-9)
    epoch_left = (self.total - steps_done) / rate if rate > 0 else None
    per_epoch = self.last_epoch_seconds or (self.total / rate if rate > 0 else None)
    later = self.num_epochs - self.epoch
    run_left = (None if epoch_left is None or per_epoch is None
                else epoch_left + later * per_epoch)
    acc = "" if accuracy is None else f" acc {100 * accuracy:.1f}%"
    speed = f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"
    info = (f"loss {loss:.4f}{acc} {speed} it/s ETA {_clock(epoch_left)} "
            f"run {_clock(run_left)}")
    self.bar.update(self.task, completed=steps_done, info=info, refresh=True)

  def __exit__(self, *exc):
    if self.bar is not None:
      self.bar.stop()
