"""experiments/cpu_campaign.sh: report E's CPU runs one at a time, in the plan's order,
skipping what is finished (a workdir's results.json, or a line in seeds.csv when runs/ did
not survive a session change), stopping at a failed run, refusing a second campaign. The
training and the tabulation are a stand-in `$PY` that records its command lines."""
import fcntl
import os
import pathlib
import re
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "cpu_campaign.sh"
FAKE_PY = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
for arg in "$@"; do case $arg in --workdir=*) workdir=${arg#--workdir=} ;; esac; done
if [ -n "${workdir:-}" ]; then
  if [ -n "${FAIL_ON:-}" ] && [ "$workdir" = "$FAIL_ON" ]; then echo "diverged"; exit 3; fi
  echo '{}' > "$workdir/results.json"
fi
"""
LEDGER_HEADER = "row,seed,accuracy,best_checkpoint,epochs_run,wall_seconds,device,together,program,identity,commit,date\n"


def planned_runs() -> list[tuple[str, str, str]]:
  """(row, variant, seed) of every run in the script's RUNS, in its order."""
  block = re.search(r"RUNS=\((.*?)\n\)", SCRIPT.read_text(), re.S).group(1)
  return re.findall(r"(\S+):(\w+):(\d+)", re.sub(r"#.*", "", block))


def campaign(tmp_path, ledger_rows=(), finished=(), fail_on=None):
  """Runs a copy of the script in tmp_path; returns (process, [(row, seed) trained], calls)."""
  (tmp_path / "experiments" / "results").mkdir(parents=True, exist_ok=True)
  shutil.copy(SCRIPT, tmp_path / "experiments" / "cpu_campaign.sh")
  (tmp_path / "experiments" / "results" / "seeds.csv").write_text(
      LEDGER_HEADER + "".join(f"{row},{seed},70.0,70.0,20,1.0,cpu,1,seed{seed},x,y,z\n"
                              for row, seed in ledger_rows))
  for row, seed in finished:
    workdir = tmp_path / "runs" / "reproduce" / row / f"seed{seed}"
    workdir.mkdir(parents=True)
    (workdir / "results.json").write_text("{}")
  fake = tmp_path / "fake_python"
  fake.write_text(FAKE_PY)
  fake.chmod(0o755)
  calls = tmp_path / "calls.log"
  env = dict(os.environ, PY=str(fake), CALLS=str(calls), FAIL_ON=fail_on or "")
  proc = subprocess.run(["bash", str(tmp_path / "experiments" / "cpu_campaign.sh")],
                        env=env, capture_output=True, text=True, timeout=60)
  lines = calls.read_text().splitlines() if calls.exists() else []
  trained = [tuple(re.search(r"runs/reproduce/(\S+)/seed(\d+)", l).groups())
             for l in lines if "digitjax.main" in l]
  return proc, trained, lines


def test_runs_in_order_and_skips_what_is_finished_or_recorded(tmp_path):
  plan = planned_runs()
  assert len(plan) >= 10 and plan[0][0] == "E2-sgd"
  recorded, done = [(plan[0][0], plan[0][2]), (plan[4][0], plan[4][2])], [(plan[1][0], plan[1][2])]
  proc, trained, calls = campaign(tmp_path, ledger_rows=recorded, finished=done)
  assert proc.returncode == 0, proc.stderr
  expected = [(row, seed) for row, _, seed in plan if (row, seed) not in recorded + done]
  assert trained == expected
  assert "recorded in experiments/results/seeds.csv" in proc.stdout
  assert proc.stdout.rstrip().endswith("campaign done")
  row, variant, seed = plan[2]
  assert calls[0] == (f"-m digitjax.main --config=configs/report_e.py:{variant} "
                      f"--workdir=runs/reproduce/{row}/seed{seed} --config.seed={seed}")
  assert calls[1] == "-m experiments.reproduce --report E --tabulate"  # after each run
  assert len(calls) == 2 * len(expected)


def test_a_failed_run_stops_the_campaign_there(tmp_path):
  plan = planned_runs()
  row, _, seed = plan[1]
  proc, trained, calls = campaign(tmp_path, fail_on=f"runs/reproduce/{row}/seed{seed}")
  assert proc.returncode == 3
  assert trained == [(plan[0][0], plan[0][2]), (row, seed)]
  assert f"{row} seed {seed} stopped (exit 3); rerun this script to resume it" in proc.stdout
  assert "diverged" in (tmp_path / "runs" / "reproduce" / row / f"seed{seed}" / "train.log").read_text()


def test_a_second_campaign_is_refused(tmp_path):
  lock = tmp_path / "runs" / "reproduce" / ".lock"
  lock.parent.mkdir(parents=True)
  with open(lock, "w") as held:
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    proc, trained, _ = campaign(tmp_path)
  assert proc.returncode == 2 and trained == []
  assert "a campaign already runs here" in proc.stderr
