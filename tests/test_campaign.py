"""experiments/cpu_campaign.sh: report E's CPU runs one at a time, in the plan's order,
skipping what is finished (asked of experiments.reproduce.done: a workdir's results.json,
or a line in seeds.csv when runs/ did not survive a session change), stopping at a failed
run or a workdir of another config, refusing a second campaign. The training, the
tabulation and the question are a stand-in `$PY` that records its command lines; the
question's real answers are tested below on real configs."""
import fcntl
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "cpu_campaign.sh"
FAKE_PY = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
if [ "$2" = experiments.reproduce.done ]; then  # finished: its results.json or a ledger line
  if [ "$3/$4" = "${STALE:-}" ]; then echo "error: another config" >&2; exit 2; fi
  [ -f "runs/reproduce/$3/seed$4/results.json" ] && exit 0
  grep -q "^$3,$4," experiments/results/seeds.csv && exit 0
  exit 1
fi
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


def campaign(tmp_path, ledger_rows=(), finished=(), fail_on=None, stale=None):
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
  env = dict(os.environ, PY=str(fake), CALLS=str(calls), FAIL_ON=fail_on or "",
             STALE=stale or "")
  proc = subprocess.run(["bash", str(tmp_path / "experiments" / "cpu_campaign.sh")],
                        env=env, capture_output=True, text=True, timeout=60)
  lines = [l for l in (calls.read_text().splitlines() if calls.exists() else [])
           if "experiments.reproduce.done" not in l]
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
  assert f"{plan[4][0]} seed {plan[4][2]}: done" in proc.stdout
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


def test_a_workdir_of_another_config_stops_the_campaign_before_it(tmp_path):
  plan = planned_runs()
  row, _, seed = plan[2]
  proc, trained, _ = campaign(tmp_path, stale=f"{row}/{seed}")
  assert proc.returncode == 2
  assert trained == [(plan[0][0], plan[0][2]), (plan[1][0], plan[1][2])]
  assert f"{row} seed {seed}: cannot tell whether it is done (above); campaign stopped" \
      in proc.stdout


def _ledger_line(row, seed, identity):
  return (f"{row},{seed},80.0000,80.0000,30,100.0,cpu,1,seed{seed},{identity},abc,"
          "2026-12-08\n")


def test_done_counts_a_seed_only_under_the_rows_config_today(tmp_path):
  """E6.3's seeds of Keras's Adam epsilon 1e-7 are not done once its config follows the
  notebook's 1e-8: neither their ledger lines nor their workdirs."""
  from digitjax import fingerprint
  from digitjax.errors import UserError
  from experiments.reproduce import catalogue, done

  config = catalogue.load_config("configs/report_e.py:e6_v7_step3")
  old = config.copy_and_resolve_references()
  old.optimizer.epsilon = 1e-7
  results = tmp_path / "results"
  results.mkdir()
  (results / "seeds.csv").write_text(
      LEDGER_HEADER + _ledger_line("E6.3", 1, fingerprint.digest(old, 1))
      + _ledger_line("E6.3", 2, fingerprint.digest(config, 2)))
  runs = tmp_path / "runs"
  args = dict(workroot=str(runs), results=str(results))
  assert [done.is_done("E6.3", s, **args) for s in (0, 1, 2)] == [False, False, True]
  workdir = runs / "E6.3" / "seed1"
  workdir.mkdir(parents=True)
  old.seed = 1
  (workdir / "config.json").write_text(old.to_json())
  (workdir / "results.json").write_text("{}")
  with pytest.raises(UserError, match=r"optimizer.epsilon: 1e-07 -> 1e-08\). Move it aside"):
    done.is_done("E6.3", 1, **args)


def test_done_answers_with_its_exit_status(tmp_path, capsys):
  from experiments.reproduce import done

  for argv, code in ((["E6.3", "99", f"--workroot={tmp_path}"], 1), (["E9", "0"], 2)):
    with pytest.raises(SystemExit) as e:
      done.main(argv)
    assert e.value.code == code
  assert capsys.readouterr().err == "error: no report row 'E9'\n"
