"""Ctrl-C that is never lost: KeyboardInterrupt raised only where it can propagate.

Python runs a signal handler in whatever Python frame the main thread is in. When that
frame is a gc callback (JAX's `_xla_gc_callback` runs at every collection, so often
during start-up, compilation and evaluation) or a `__del__`, the KeyboardInterrupt it
raises cannot leave that frame: Python prints "Exception ignored in: <function
_xla_gc_callback ...> KeyboardInterrupt" and carries on, and the run went on to its end
and exit 0. Here the interrupt is raised at once where that is safe, and otherwise in the
nearest frame below every such frame, at its next line (a trace function, as pdb's
set_trace arms one); one that still ends up swallowed is re-armed from sys.unraisablehook
instead of printed.
"""
from __future__ import annotations

import contextlib
import gc
import signal
import sys
import threading


def _unsafe(frame) -> bool:
  """True for a frame whose exceptions Python swallows: a gc callback or a __del__."""
  code = frame.f_code
  return code.co_name == "__del__" or any(
      getattr(cb, "__code__", None) is code for cb in gc.callbacks)


def _safe_frame(frame):
  """The frame a KeyboardInterrupt raised in `frame` should be raised in instead: frame
  itself when no frame on its stack swallows exceptions, else the one below the oldest
  that does (None: there is no such frame; raise where we are)."""
  target, f = frame, frame
  while f is not None:
    if _unsafe(f):
      target = f.f_back
    f = f.f_back
  return target


def _raise_at_next_line(frame) -> None:
  """Raises KeyboardInterrupt in `frame` at its next line (or return), via tracing."""
  previous = sys.gettrace()

  def raiser(f, event, arg):
    f.f_trace = None
    sys.settrace(previous)
    raise KeyboardInterrupt

  frame.f_trace = raiser
  frame.f_trace_lines = True
  sys.settrace(_no_new_frames)  # only `frame` is traced, not new calls


def _no_new_frames(frame, event, arg):
  return None


def interrupt(frame) -> None:
  """Raises KeyboardInterrupt from a signal handler that was given `frame`, where it
  will propagate: now, or at the next line of the nearest frame that can take it."""
  target = _safe_frame(frame) if frame is not None else None
  if target is None or target is frame:
    raise KeyboardInterrupt
  _raise_at_next_line(target)


def _install_hook() -> None:
  """Wraps sys.unraisablehook (once per process; left in place, like checkpoints' own):
  only a KeyboardInterrupt in the main thread is handled, anything else passed on."""
  previous = sys.unraisablehook
  if getattr(previous, "_digitjax_ctrl_c", False):
    return

  def hook(unraisable):
    """A KeyboardInterrupt swallowed anyway (another kind of callback): raise it again
    in the frame below, rather than print 'Exception ignored' and carry on."""
    if (unraisable.exc_type is None or not issubclass(unraisable.exc_type, KeyboardInterrupt)
        or threading.current_thread() is not threading.main_thread()):
      return previous(unraisable)
    frame = _safe_frame(sys._getframe(1))
    if frame is not None:
      _raise_at_next_line(frame)
  hook._digitjax_ctrl_c = True
  sys.unraisablehook = hook


# The stops a command answers: Ctrl-C, a scheduler's or `kill`'s SIGTERM, and the SIGHUP
# of a closed terminal. The name of the last one received, for the message.
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
last_signal: str | None = None


@contextlib.contextmanager
def guard():
  """For the block: Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt where it can
  propagate (`last_signal` names which), and a swallowed one is raised again; if the
  block still completes after one, raises KeyboardInterrupt then, and so it does if the
  block fails after one with another error (one the interrupt caused). Training's own
  handler (_Signals, which checkpoints instead) takes over while it runs. Does nothing
  off the main thread, where Python delivers no signals; a signal that is ignored (a
  background job's SIGINT, nohup's SIGHUP) stays ignored."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  received = []

  def handler(signum, frame):
    global last_signal
    last_signal = signal.Signals(signum).name
    received.append(signum)
    interrupt(frame)

  _install_hook()
  old = {sig: signal.signal(sig, handler) for sig in STOPS
         if signal.getsignal(sig) != signal.SIG_IGN}
  try:
    yield
  except Exception as e:
    if received:  # the stop surfaced as another error, and would print as a traceback:
      # an extension module whose import it cut short raises ImportError("initialization
      # failed") in its place (pybind11's, e.g. matplotlib's ft2font)
      raise KeyboardInterrupt from e
    raise
  finally:
    for sig, previous in old.items():
      signal.signal(sig, previous)
    if sys.gettrace() is _no_new_frames:  # armed, but its frame ended first: disarm
      sys.settrace(None)
  if received:  # interrupted, but something caught the KeyboardInterrupt
    raise KeyboardInterrupt


class StopSignals:
  """Training's handler: SIGTERM / SIGINT / SIGHUP set a flag; the loop checkpoints at
  the next block of steps and exits.

  SIGHUP is what a closed terminal (or a dropped ssh session) sends: it would otherwise
  kill the run with no checkpoint. A run started under nohup has it ignored, and keeps it
  so: closing that terminal is meant to leave the run going.
  """

  def __init__(self):
    self.received = None
    self._old = {}

  def __enter__(self):
    for sig in STOPS:
      if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
        continue  # nohup
      try:
        self._old[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread (e.g. inside some test runners)
        pass
    return self

  def _handle(self, signum, frame):
    if self.received is not None and signum == signal.SIGINT:
      interrupt(frame)  # a second Ctrl-C means now (and never in a gc callback)
      return
    self.received = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)
