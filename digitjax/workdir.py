"""The workdir: one run's folder, its config record, its lock, and --fresh.

A workdir holds one config's run (config.json says which), resumed by rerunning the same
command. Two processes training into one workdir would interleave their checkpoints and
metrics, so a training run holds an exclusive lock on `<workdir>/.lock` (flock: the
kernel drops it when the process ends, even by kill -9, so a lock is never stale). Only
process 0 of a multi-process run takes it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time

from digitjax import config as config_lib
from digitjax import distributed, fingerprint
from digitjax.errors import UserError

LOCK = ".lock"


def create(workdir: str) -> None:
  """Makes the workdir (and its parents); UserError if it is a file or cannot be made."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"--workdir {workdir} is a file, not a folder. Choose another --workdir.")
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create the workdir {workdir} ({e.strerror}). Choose a "
                    "--workdir where you can write.") from e


def check_path(workdir: str) -> None:
  """UserError, in one line, for a --workdir no run can live in: one ending in '.' or
  '..' (it cannot be renamed aside, nor told from its parent), a symbolic link loop or
  to nothing, a file, or a file where the checkpoints folder goes. Creates and moves
  nothing; a workdir that does not exist yet is fine."""
  last = os.path.basename(workdir.rstrip(os.sep))
  if last in ("", ".", ".."):
    raise UserError(f"--workdir {workdir} ends in {last or os.sep!r}: give the run's own "
                    f"folder, e.g. --workdir={os.path.abspath(workdir)}.")
  try:
    os.stat(workdir)
  except FileNotFoundError:
    if os.path.lexists(workdir):
      raise UserError(f"--workdir {workdir} is a symbolic link to nothing "
                      f"({os.readlink(workdir)}). Fix the link or choose another "
                      "--workdir.") from None
    return
  except OSError as e:  # a link loop (ELOOP), a file on the way (ENOTDIR), no permission
    raise UserError(f"cannot create the workdir {workdir} ({e.strerror}). Fix the path "
                    "or choose another --workdir.") from None
  if not os.path.isdir(workdir):
    raise UserError(f"--workdir {workdir} is a file, not a folder. Choose another --workdir.")
  for sub in ("checkpoints", os.path.join("checkpoints", "latest"),
              os.path.join("checkpoints", "best")):
    path = os.path.join(workdir, sub)
    if os.path.lexists(path) and not os.path.isdir(path):
      raise UserError(f"{path} is a file, not a folder: the run's checkpoints go there. "
                      "Move it away (nothing was touched) or choose another --workdir.")


def record_config(config, workdir: str) -> None:
  """Refuses a workdir that holds a run of a different config, or one whose learning-rate
  schedule another num_epochs would change (check_schedule); records this config, and
  under "provenance" what this run started on (digitjax.provenance)."""
  from digitjax import provenance

  check_config(config, workdir)
  check_schedule(config, workdir)
  if distributed.is_main_process():
    path = os.path.join(workdir, "config.json")
    record = json.loads(config.to_json_best_effort())
    record[config_lib.PROVENANCE] = provenance.record(config)
    with open(path + ".tmp", "w") as f:
      json.dump(record, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def check_config(config, workdir: str, reading: bool = False, advice: str = "") -> None:
  """UserError if workdir's config.json records a different config (none: fine), judged
  by fingerprint.require_same (`reading`: by eval, predict or load)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    try:
      recorded = fingerprint.from_json(f.read())
    except ValueError:
      recorded = None
  fingerprint.require_same(recorded, config, f"workdir {workdir}", reading, advice)


def check_schedule(config, workdir: str) -> None:
  """UserError if resuming workdir's checkpoints under config would change the length of
  their learning-rate schedule: a cosine schedule spans num_epochs, so another num_epochs
  would silently restart its curve mid-run (a finished run's lr would jump from 0 back
  up). Constant schedules (and ReduceLROnPlateau) resume under any num_epochs."""
  from digitjax import checkpoints, optim

  schedule = config.optimizer.schedule
  if schedule not in optim.RUN_LENGTH_SCHEDULES or not checkpoints.saved_any(workdir):
    return
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      theirs = json.load(f)["num_epochs"]
  except (OSError, ValueError, KeyError, TypeError):
    return  # no readable record: check_config has already judged the workdir
  if theirs != config.num_epochs:
    raise UserError(
        f"workdir {workdir} was trained with num_epochs={theirs} under the {schedule} "
        f"learning-rate schedule, which spans num_epochs: resuming with num_epochs="
        f"{config.num_epochs} would restart that schedule mid-run. Keep "
        f"--config.num_epochs={theirs}, or train the longer schedule from scratch with "
        "--fresh (the old run is set aside) or another --workdir.")


def read_results(workdir: str) -> dict | None:
  """workdir's results.json, or None if it has none or it cannot be read (a rerun of the
  same config resumes and writes it again)."""
  try:
    with open(os.path.join(workdir, "results.json")) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


@contextlib.contextmanager
def lock(workdir: str):
  """Holds workdir's lock for the block; UserError naming the holder if another run has
  it. Where the filesystem cannot lock (some network mounts), runs unlocked."""
  if not distributed.is_main_process():
    yield
    return
  try:
    fd = os.open(os.path.join(workdir, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:  # read-only mount, someone else's folder
    raise UserError(f"cannot write in the workdir {workdir} ({e.strerror}). Choose a "
                    "--workdir where you can write.") from e
  try:
    busy = False
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      os.ftruncate(fd, 0)
      os.pwrite(fd, (f"pid {os.getpid()} on {socket.gethostname()}, since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)}"[:1000]
                     ).encode(), 0)
    except OSError as e:  # other errors: this filesystem cannot lock; run unlocked
      busy = e.errno in (errno.EWOULDBLOCK, errno.EACCES)
    if busy:
      raise _in_use(workdir, fd)
    yield
  finally:
    os.close(fd)  # closing drops the lock


def refuse_if_busy(workdir: str) -> None:
  """The refusal lock() would give, at once: before a run reads its data and compiles
  (a minute for GoogLeNet) only to be refused. Writes nothing; lock() still decides."""
  if not distributed.is_main_process():
    return
  try:
    fd = os.open(os.path.join(workdir, LOCK), os.O_RDONLY)
  except OSError:  # no lock file (a new workdir), or one lock() will report on
    return
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the close below
  except OSError as e:
    if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
      raise _in_use(workdir, fd) from None
  finally:
    os.close(fd)


def _in_use(workdir: str, fd: int) -> UserError:
  holder = os.pread(fd, 1000, 0).decode(errors="replace").strip() or "unknown"
  return UserError(
      f"workdir {workdir} is in use by another run ({holder}). Wait for it to end, "
      "stop it (Ctrl-C or kill PID: it saves a checkpoint, and rerunning resumes), "
      "or use another --workdir.")


def set_aside(workdir: str) -> str | None:
  """--fresh: renames an existing workdir to <workdir>.old-<time> (never deletes it) and
  returns the new name; refuses while a run holds it."""
  if not os.path.isdir(workdir):
    return None
  aside = f"{workdir.rstrip('/')}.old-{time.strftime('%Y%m%d-%H%M%S')}"
  with lock(workdir):
    os.rename(workdir, aside)
  return aside
