"""The live progress line of a training epoch, shown on a terminal only.

On a terminal (main process), a rich progress bar shows the epoch's steps done, the
running training loss, steps/s and the ETA of the epoch and of the whole run. It moves
only when step metrics already reach the host (every config.log_every_steps, at
checkpoints): it adds no device sync. It is transient, so the epoch's Keras-style line
(digitjax.train.print_epoch) takes its place when the epoch ends. Anywhere else (a log file, a
batch job, captured output) it shows nothing at all: those logs keep exactly one line
per epoch, free of control characters.
"""
from __future__ import annotations

import datetime
import sys
import time

from digitjax import distributed


def _console():
  """rich's console on stdout if that is an interactive terminal on the main process, else
  None. stdout itself must be a tty: FORCE_COLOR (set by some CI) makes rich treat a log
  as a terminal, and a log must not fill with a redrawn line."""
  if not distributed.is_main_process():
    return None
  try:
    if not sys.stdout.isatty():
      return None
  except (AttributeError, ValueError):  # no isatty, or a closed stream
    return None
  from rich.console import Console

  console = Console()
  return console if console.is_interactive else None


def _clock(seconds: float | None) -> str:
  return "-:--:--" if seconds is None else str(datetime.timedelta(seconds=round(seconds)))


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
        rp.TextColumn(f"Epoch {self.epoch}/{self.num_epochs}"), rp.BarColumn(),
        rp.MofNCompleteColumn(), rp.TextColumn("{task.fields[info]}"),
        console=self.console, transient=True, auto_refresh=False)
    self.bar.start()
    self.task = self.bar.add_task("train", total=self.total, completed=self.start,
                                  info="")
    self.bar.refresh()
    self.t0 = time.monotonic()
    return self

  def update(self, steps_done: int, loss: float) -> None:
    """steps_done of the epoch (from its start), the epoch's running loss so far."""
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
    info = (f"loss {loss:.4f} - {rate:.1f} steps/s - ETA epoch {_clock(epoch_left)}, "
            f"run {_clock(run_left)}")
    self.bar.update(self.task, completed=steps_done, info=info, refresh=True)

  def __exit__(self, *exc):
    if self.bar is not None:
      self.bar.stop()
