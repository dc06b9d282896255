"""Checkpoints in the workdir, with orbax-checkpoint.

Two CheckpointManagers, one folder each, so neither retention rule can evict the other:
- `checkpoints/latest`: the state to resume from, kept two deep so that a checkpoint
  found corrupt on restore falls back to the one before it;
- `checkpoints/best`: the state with the best monitored validation metric, which eval
  mode and the final test figures use.

A checkpoint holds the TrainState pytree and a JSON `meta` dict (epoch, history, early
stopping counters, and `config_fingerprint`: digitjax.fingerprint of the config that
wrote it): everything the loop needs to continue exactly. A restore reads the meta first, so a
checkpoint of another config is refused in one message and left in place; only one that
cannot be read (truncated file, bad JSON) is moved to checkpoints/unreadable/.
Saves are synchronous (the states are small) and orbax writes into a temporary folder
that it renames only when complete, so a failed or interrupted save never replaces a
good checkpoint.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import traceback

import jax
import orbax.checkpoint as ocp
from absl import logging

from digitjax.errors import UserError


def _is_stray_closed_loop_callback(unraisable) -> bool:
  """True for the 'Event loop is closed' errors a failed orbax restore leaves behind.

  When a restore fails (a damaged checkpoint), orbax's asyncio.run() closes its event
  loop while tensorstore still has reads in flight; as each finishes, its callback calls
  loop.call_soon_threadsafe() on the closed loop, and Python prints the RuntimeError as an
  unraisable exception: dozens of tracebacks before our one-line warning. They carry no
  information (the restore already failed and is handled), so only these are dropped.
  """
  exc = unraisable.exc_value
  if unraisable.exc_type is not RuntimeError or str(exc) != "Event loop is closed":
    return False
  frames = traceback.extract_tb(unraisable.exc_traceback)
  return any(f.name == "call_soon_threadsafe" for f in frames)


def _is_orbax_write_left_at_exit(unraisable) -> bool:
  """True for orbax's write coroutines that a failed save (a full disk) leaves pending:
  Python reports each one as it shuts down, after our one-line error."""
  code = getattr(unraisable.object, "cr_code", None)
  return code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename


def _silence_orbax_leftovers():
  """Installs (once per process) an unraisable hook that drops only the two kinds above."""
  previous = sys.unraisablehook
  if getattr(previous, "_digitjax", False):
    return

  def hook(unraisable):
    if not (_is_stray_closed_loop_callback(unraisable)
            or _is_orbax_write_left_at_exit(unraisable)):
      previous(unraisable)

  hook._digitjax = True
  sys.unraisablehook = hook
  # the same writes, when asyncio (not Python's shutdown) finds them failed: it logs each
  # as "Task exception was never retrieved" after our one-line error
  import logging as std_logging
  std_logging.getLogger("asyncio").addFilter(
      lambda r: not (r.getMessage().startswith("Task exception was never retrieved")
                     and f"{os.sep}orbax{os.sep}" in r.getMessage()))


@contextlib.contextmanager
def _orbax_errors_unlogged():
  """Orbax logs an ERROR line per damaged metadata file it reads, from several threads;
  while opening and restoring, the failure is reported once, by _restore's own warning."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.FATAL)
  try:
    yield
  finally:
    logging.set_verbosity(verbosity)


def _manager(path: str, keep: int, read_only: bool) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only,
                                         read_only=read_only,
                                         enable_async_checkpointing=False)
  return _past_vanished_steps(
      lambda: ocp.CheckpointManager(os.path.abspath(path), options=options), read_only)


def _past_vanished_steps(read, read_only: bool, attempts: int = 5):
  """read(), tried again when a step it lists vanishes before it reads it: orbax lists
  the step folders, then reads each one's metadata, and a training writing the same
  workdir may delete a step (its retention) in between. Only a reader retries; for the
  training itself a missing file is a real fault."""
  for attempt in range(attempts if read_only else 1):
    try:
      return read()
    except FileNotFoundError:
      if not read_only or attempt == attempts - 1:
        raise
      time.sleep(0.05 * (attempt + 1))


class Checkpoints:
  """The latest and best checkpoints of one workdir.

  read_only (eval, predict, digitjax.load): nothing is created, saved, moved or deleted.
  Such a reader may run while a training writes the same workdir, whose retention then
  deletes steps under it: a step that vanishes (or fails) while being read is passed
  over, and the folder listed again for the newer steps that replaced it.
  """

  def __init__(self, workdir: str, read_only: bool = False):
    self.root = os.path.join(workdir, "checkpoints")
    self.read_only = read_only
    with _orbax_errors_unlogged():  # the managers read every step's metadata
      self.latest = _manager(os.path.join(self.root, "latest"), 2, read_only)
      self.best = _manager(os.path.join(self.root, "best"), 1, read_only)

  @staticmethod
  def _save(manager, step: int, state, meta: dict, what: str, replace: bool = False):
    """Saves one step; a failed write (a full disk) is one UserError, and the step's
    half-written folder stays orbax's temporary one, which no restore reads.

    A step is saved twice when a run replays it after falling back from an unreadable
    checkpoint (replay is deterministic, so the good copy on disk stays), and when a run
    stopped at an epoch's end, before validating, finishes that epoch: `replace` then
    puts the finished epoch's state (plateau, best) and meta in place of the stopped one.
    """
    if int(step) in manager.all_steps():
      if not replace:
        return
      manager.delete(int(step))
    _silence_orbax_leftovers()
    try:
      with _orbax_errors_unlogged():  # orbax logs each failed write, from each thread
        manager.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
        manager.wait_until_finished()
    except Exception as e:  # tensorstore's write errors arrive as ValueError and others
      code = re.search(r"os_error_code='?(\d+)", str(e))
      reason = os.strerror(int(code.group(1))) if code else str(e).splitlines()[0][:200]
      raise UserError(
          f"could not save the {what} checkpoint at step {step} in {manager.directory} "
          f"({reason}). The checkpoints saved before it are intact: free disk space and "
          "rerun the same command to resume from the last of them.") from e

  def save_latest(self, step: int, state, meta: dict, replace: bool = False):
    self._save(self.latest, step, state, meta, "latest", replace)

  def save_best(self, step: int, state, meta: dict, replace: bool = False):
    self._save(self.best, step, state, meta, "best", replace)

  def _restore(self, manager, abstract_state, what: str, check=None):
    with _orbax_errors_unlogged():
      for _ in range(3 if self.read_only else 1):  # a training may replace steps meanwhile
        tried = set(manager.all_steps())
        restored = self._restore_newest_readable(manager, abstract_state, what, check)
        _past_vanished_steps(manager.reload, self.read_only)
        if restored is not None or set(manager.all_steps()) <= tried:
          return restored
      return restored

  def _restore_newest_readable(self, manager, abstract_state, what: str, check=None):
    """The newest readable checkpoint of `manager` as (state, meta), or None if none.

    Its meta is read first and given to check(meta, where), which raises UserError for a
    checkpoint of another config (nothing is moved). A checkpoint whose arrays have other
    shapes than `abstract_state` (of the same config: a model whose layout changed since)
    is also one UserError, nothing moved. A checkpoint that fails to restore otherwise
    (truncated or deleted file, bad JSON, half-written step) is reported in one line,
    moved to checkpoints/unreadable/ (kept for inspection, and out of the way of the step
    that will be saved again) and the next older one is tried.
    """
    _silence_orbax_leftovers()
    _past_vanished_steps(manager.reload, self.read_only)
    for step in sorted(manager.all_steps(), reverse=True):
      where = f"the {what} checkpoint at step {step} in {manager.directory}"
      try:
        meta = manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore())).meta
        if not isinstance(meta, dict):
          raise ValueError("its meta is not a JSON object")
      except Exception as e:  # orbax raises many types for damaged files
        self._set_aside(manager, step, what, e)
        continue
      if check is not None:
        check(meta, where)
      # Before restoring: a failed restore of other shapes leaves orbax's reads to print.
      if _other_shapes(os.path.join(manager.directory, str(step), "state"), abstract_state):
        raise UserError(
            f"{where} does not fit this config (its arrays have other shapes: the "
            "model's layout changed since it was saved?). Nothing was moved: use the "
            "digitjax it was made with, or another --workdir, or --fresh to set the old "
            "run aside.")
      try:
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        return restored.state, restored.meta
      except Exception as e:
        self._set_aside(manager, step, what, e)
    return None

  def _set_aside(self, manager, step: int, what: str, e: Exception) -> None:
    """Moves an unreadable step out of the way (a reader only passes it over)."""
    if self.read_only:
      print(f"warning: {what} checkpoint at step {step} is unreadable or was removed while "
            f"being read ({type(e).__name__}: {str(e).splitlines()[0][:150]}); trying "
            "another one.", file=sys.stderr)
      return
    aside = os.path.join(self.root, "unreadable", f"{what}-{step}-{time.time():.0f}")
    os.makedirs(os.path.dirname(aside), exist_ok=True)
    os.rename(os.path.join(manager.directory, str(step)), aside)
    manager.reload()
    print(f"warning: {what} checkpoint at step {step} is unreadable "
          f"({type(e).__name__}: {str(e).splitlines()[0][:150]}); moved it to {aside} "
          "and trying an older one.", file=sys.stderr)

  def restore_latest(self, abstract_state, check=None):
    return self._restore(self.latest, abstract_state, "latest", check)

  def restore_best(self, abstract_state, check=None):
    return self._restore(self.best, abstract_state, "best", check)

  def close(self):
    self.latest.close()
    self.best.close()


def _other_shapes(path: str, abstract_state) -> bool:
  """True if the stored state at `path` has readable metadata whose array shapes are not
  those of abstract_state (another width, another optimizer's state)."""
  try:
    stored = ocp.StandardCheckpointer().metadata(path)
    stored = getattr(stored, "item_metadata", stored)
    have = sorted(tuple(x.shape) for x in jax.tree.leaves(stored) if hasattr(x, "shape"))
  except Exception:  # unreadable metadata: a damaged checkpoint, not another config
    return False
  return bool(have) and have != sorted(tuple(x.shape) for x in jax.tree.leaves(abstract_state))


def saved_any(workdir: str) -> bool:
  """True if the workdir holds a best or a latest checkpoint; creates nothing."""
  root = os.path.join(workdir, "checkpoints")
  return any(os.path.isdir(d) and any(name.isdigit() for name in os.listdir(d))
             for d in (os.path.join(root, "best"), os.path.join(root, "latest")))


def require_best(workdir: str) -> None:
  """Raises UserError unless the workdir holds a best or a latest checkpoint (eval falls
  back to the latest when the best is lost); creates nothing."""
  if not saved_any(workdir):
    raise UserError(f"there is nothing to evaluate in {workdir}: it holds no checkpoint. "
                    "Train first (--mode=train) or point --workdir at a trained run.")
