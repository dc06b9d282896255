"""The guard that keeps tests out of the user's files (tests/isolation.py) sees every
kind of change, and leaves a workdir alone while a training holds its lock."""
import fcntl
import os

import isolation


def test_created_changed_and_deleted_files_and_folders_are_all_reported(tmp_path):
  (tmp_path / "runs" / "slurm").mkdir(parents=True)
  kept = tmp_path / "runs" / "slurm" / "mine.sbatch"
  kept.write_text("#!/bin/bash\n")
  gone = tmp_path / "configs.py"
  gone.write_text("x = 1\n")
  before = isolation.snapshot([tmp_path])
  assert isolation.changes(before, isolation.snapshot([tmp_path])) == []

  kept.write_text("#!/bin/bash\necho overwritten\n")
  gone.unlink()
  (tmp_path / "runs" / "new").mkdir()
  (tmp_path / "runs" / "new" / "config.json").write_text("{}")
  assert isolation.changes(before, isolation.snapshot([tmp_path])) == [
      f"deleted {gone}", f"created {tmp_path / 'runs' / 'new'}",
      f"created {tmp_path / 'runs' / 'new' / 'config.json'}", f"changed {kept}"]


def test_tool_folders_are_skipped_and_a_missing_root_is_empty(tmp_path):
  (tmp_path / ".venv" / "bin").mkdir(parents=True)
  (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
  before = isolation.snapshot([tmp_path, tmp_path / "absent"])
  (tmp_path / ".venv" / "bin" / "python").write_text("")
  (tmp_path / "pkg" / "__pycache__" / "m.pyc").write_bytes(b"\0")
  assert isolation.changes(before, isolation.snapshot([tmp_path])) == []


def test_a_workdir_a_training_holds_is_left_to_it_and_freed_once_unlocked(tmp_path):
  workdir = tmp_path / "runs" / "bn"
  workdir.mkdir(parents=True)
  with open(workdir / ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    before = isolation.snapshot([tmp_path])
    (workdir / "metrics.jsonl").write_text("{}\n")
    assert isolation.changes(before, isolation.snapshot([tmp_path])) == []
  os.remove(workdir / "metrics.jsonl")
  after = isolation.snapshot([tmp_path])  # unlocked: watched again
  assert str(workdir / ".lock") in after
