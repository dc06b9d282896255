"""The reproduce runner (python -m experiments.reproduce): it trains the catalogue's rows,
reads each figure the way its report did, keeps every finished seed in the ledger
(seeds.csv), and writes the tables, their verdicts and the links to each row's note.
"""
import csv
import json
import os
import pathlib
import subprocess
import sys

import pytest

from experiments.reproduce import catalogue, ledger, runner, tables
from experiments.reproduce import run as reproduce

def test_verdicts_follow_reports_md():
  """The published figure against the 95% t-interval of our mean (3 seeds: +-2.48 std;
  10 seeds: +-0.72 std), not against +-1 std."""
  assert tables.verdict(99.51, 99.45, 0.08, 3).startswith("reproduced")
  assert tables.verdict(99.51, 99.30, 0.08, 3).startswith("below (-0.21")
  assert tables.verdict(99.51, 99.75, 0.08, 3).startswith("above (+0.24")
  # 0.15 off with std 0.07 over 3 seeds: beyond 1 std, inside the interval (+-0.174)
  assert tables.verdict(98.85, 99.00, 0.07, 3) == "reproduced (+0.15 pts)"
  assert tables.verdict(98.85, 98.70, 0.07, 3) == "reproduced (-0.15 pts)"
  # 0.07 off with std 0.08 over 10 seeds: within 1 std, outside the interval (+-0.057)
  assert tables.verdict(99.51, 99.44, 0.08, 10) == "below (-0.07 pts)"
  assert tables.verdict(99.51, 99.58, 0.08, 10) == "above (+0.07 pts)"
  assert tables._ci_cell(99.0, 0.07, 3) == "98.83-99.17"
  assert tables._ci_cell(99.0, 0.0, 1) == ""
  assert tables.verdict(99.51, 99.51, 0.0, 1) == "1 seed: +0.00 pts, no verdict yet"
  assert tables.verdict(99.51, 99.30, 0.08, 2) == "2 seeds: -0.21 pts, no verdict yet"
  assert tables.verdict(None, 97.0, 0.1, 3) == "no published figure"


def _table(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def test_reproduce_quick_writes_well_formed_tables_and_resumes(tmp_path, no_prepared_data):
  # no prepared data: --quick runs the rows on mock data (runner.quick_data)
  out = tmp_path / "results"
  written = reproduce.reproduce("A", seeds=2, rows="A1,A4", is_quick=True,
                                workroot=str(tmp_path / "runs"), out_dir=str(out))
  assert set(written) == {"A"}
  table = _table(out / "A.csv")
  assert [r["row"] for r in table] == ["A1", "A2", "A3", "A4", "A5"]  # every row listed
  rows = [r for r in table if r["row"] in ("A1", "A4")]
  assert rows[0]["published %"] == "92.78" and rows[1]["published %"] == ""
  # rows not asked for: not run, their data pending here ("not run yet" where it is prepared)
  assert {r["verdict"] for r in table if r["row"] not in ("A1", "A4")} == {
      "pending data (mnist not prepared)"}
  for r in rows:
    assert r["seeds"] == "2" and r["epochs run"] == "1,1"
    assert 0 <= float(r["ours mean %"]) <= 100 and float(r["ours std"]) >= 0
    assert r["verdict"].startswith("quick run")
    assert r["wall time per run"].endswith(" s")
  seeds = [json.loads((tmp_path / "runs" / "A1" / f"seed{k}" / "config.json").read_text())
           ["seed"] for k in (0, 1)]
  assert seeds == [0, 1]
  md = (out / "A.md").read_text().splitlines()
  header = next(l for l in md if l.startswith("| row"))
  assert header.count("|") == len(tables.MD_COLUMNS) + 1
  assert sum(l.startswith("| A") for l in md) == 5
  # Rerun of A1 only: its finished runs are read back, not retrained, and A4's runs,
  # not chosen this time, stay in the table (read back from their workdirs).
  stamp = os.path.getmtime(tmp_path / "runs" / "A1" / "seed0" / "results.json")
  reproduce.reproduce("A", seeds=2, rows="A1", is_quick=True,
                      workroot=str(tmp_path / "runs"), out_dir=str(out))
  assert os.path.getmtime(tmp_path / "runs" / "A1" / "seed0" / "results.json") == stamp
  again = {r["row"]: r for r in _table(out / "A.csv")}
  assert again["A1"]["ours mean %"] == rows[0]["ours mean %"]
  assert again["A4"]["ours mean %"] == rows[1]["ours mean %"]
  assert again["A4"]["seeds"] == "2"
  # Damaged files in finished runs: those runs no longer count; no traceback.
  (tmp_path / "runs" / "A4" / "seed1" / "results.json").write_text('{"test_acc')
  (tmp_path / "runs" / "A1" / "seed0" / "config.json").write_text("")
  reproduce.reproduce("A", seeds=2, is_quick=True, tabulate=True,
                      workroot=str(tmp_path / "runs"), out_dir=str(out))
  damaged = {r["row"]: r for r in _table(out / "A.csv")}
  assert damaged["A4"]["seeds"] == "1" and damaged["A1"]["seeds"] == "1"


def test_a_heavy_row_without_its_data_names_both_needs(tmp_path, no_prepared_data):
  """Report E's GoogLeNet needs a GPU and tf_flowers: a GPU alone would not run it."""
  out = tmp_path / "results"
  reproduce.reproduce("E", seeds=3, rows="E5-sgd", workroot=str(tmp_path / "runs"),
                      out_dir=str(out))
  rows = {r["row"]: r for r in _table(out / "E.csv")}
  assert rows["E2-adam"]["verdict"].startswith("pending data (tf_flowers"), rows["E2-adam"]
  for row in ("E5-sgd", "E3-sgd"):  # run and skipped; listed from the (empty) workroot
    assert rows[row]["verdict"].startswith("needs a GPU"), rows[row]
    assert "pending data (tf_flowers not prepared)" in rows[row]["verdict"], rows[row]


def test_reproduce_lists_pending_data_and_gpu_rows_without_running(tmp_path, no_prepared_data):
  out = tmp_path / "results"
  reproduce.reproduce("D", seeds=3, rows="D1,D3", workroot=str(tmp_path / "runs"),
                      out_dir=str(out))
  rows = {r["row"]: r for r in _table(out / "D.csv")}
  assert rows["D1"]["verdict"].startswith("needs a GPU")
  assert rows["D2"]["verdict"].startswith("needs a GPU")  # not chosen, listed all the same
  assert rows["D3"]["verdict"].startswith("pending data (cifar10")
  assert rows["D4"]["verdict"].startswith("pending data (cifar10")
  assert rows["D1-30"]["verdict"] == "pending data (mnist not prepared)"
  assert rows["D3"]["published %"] == "64.69" and rows["D3"]["ours mean %"] == ""
  assert not (tmp_path / "runs").exists()
  # a row's notes are a link to its note in docs/report_d.md, run or not
  assert rows["D1"]["notes"] == "docs/report_d.md#d1" and rows["D2-30"]["notes"] == ""


def test_reproduce_bad_report_or_row_is_a_user_error():
  from digitjax.errors import UserError
  with pytest.raises(UserError, match="unknown report 'F'"):
    catalogue.rows("F")
  with pytest.raises(UserError, match="no row B9 in report B; it has B1"):
    catalogue.rows("B", "B9")


def test_runner_reads_each_figure_the_way_its_report_did(tmp_path):
  """Keras's fit() leaves the last epoch's weights unless EarlyStopping restores the best;
  val rows publish the best val accuracy over the epochs."""
  result = dict(test_accuracy=0.981, test_accuracy_last_epoch=0.985, wall_seconds=1.0,
                epochs_run=3)
  (tmp_path / "metrics.jsonl").write_text("".join(
      json.dumps(dict(epoch=e, seed=0, val_accuracy=v)) + "\n"
      for e, v in enumerate([0.70, 0.74, 0.72], 1)))
  by_id = {r.id: r for r in catalogue.ROWS}
  run = runner.SeedRun(0, result, str(tmp_path), 1.0, "cpu", 1)
  last = reproduce._run_entry(by_id["B1"], run)
  best = reproduce._run_entry(by_id["B6a"], run)
  val = reproduce._run_entry(by_id["E1"], run)
  assert by_id["B1"].weights == "last" and by_id["B6a"].weights == "best"
  assert last["accuracy"] == pytest.approx(98.5) and last["best_checkpoint"] == pytest.approx(98.1)
  assert best["accuracy"] == pytest.approx(98.1)
  assert val["accuracy"] == pytest.approx(74.0)


def test_reproduce_together_trains_missing_seeds_as_one_program(tmp_path, no_prepared_data):
  """--together: seeds 0-1 in one vmapped program (A1/seeds0-1); asked for 3 seeds later,
  only seed 2 runs. A seed finished both alone and together counts once."""
  runs, out = tmp_path / "runs", tmp_path / "results"
  reproduce.reproduce("A", seeds=2, rows="A1", is_quick=True, workroot=str(runs),
                      out_dir=str(out), together=True)
  assert sorted(os.listdir(runs / "A1")) == ["seeds0-1"]
  config = json.loads((runs / "A1" / "seeds0-1" / "config.json").read_text())
  assert (config["seed"], config["num_seeds"]) == (0, 2)
  row = {r["row"]: r for r in _table(out / "A.csv")}["A1"]
  assert row["seeds"] == "2" and row["epochs run"] == "1,1"
  assert row["wall time per run"].endswith(" s per 2 seeds together")
  reproduce.reproduce("A", seeds=3, rows="A1", is_quick=True, workroot=str(runs),
                      out_dir=str(out), together=True)
  assert sorted(os.listdir(runs / "A1")) == ["seed2", "seeds0-1"]
  reproduce.reproduce("A", seeds=1, rows="A1", is_quick=True, workroot=str(runs),
                      out_dir=str(out))  # seed 0 is done (in seeds0-1): nothing runs
  assert sorted(os.listdir(runs / "A1")) == ["seed2", "seeds0-1"]
  read = reproduce.reproduce("A", rows="A1", is_quick=True, workroot=str(runs),
                             out_dir=str(out), tabulate=True)
  row = {r["row"]: r for r in _table(out / "A.csv")}["A1"]
  assert read and row["seeds"] == "3"
  assert row["wall time per run"].count("; ") == 1  # one figure per program shape


def test_wall_time_names_the_device_and_counts_a_program_once():
  runs = [dict(wall_seconds=100.0, device="cpu", together=1, workdir="a/seed0"),
          dict(wall_seconds=30.0, device="NVIDIA H200", together=2, workdir="a/seeds1-2"),
          dict(wall_seconds=30.0, device="NVIDIA H200", together=2, workdir="a/seeds1-2")]
  assert tables._wall_times(runs) == "100 s; 30 s per 2 seeds together on NVIDIA H200"
  assert runner.seed_blocks([0, 1, 3, 5, 6], together=True) == [[0, 1], [3], [5, 6]]
  assert runner.seed_blocks([0, 1, 3], together=False) == [[0], [1], [3]]


def test_markdown_page_is_compact_and_links_each_rows_note():
  """A row's note is a link to docs/report_<x>.md, never its text; the cells keep every
  figure of the CSV row."""
  base = dict(config="configs/report_e.py:e3_vgg16_adam", metric="val", weights="best val",
              **{"published %": "27.00", "ours mean %": "", "ours std": "", "seeds": "0",
                 "ours 95% CI": "", "best-ckpt test %": "", "epochs": "150", "epochs run": "",
                 "wall time per run": "", "verdict": "not run yet"})
  rows = [dict(base, row="E3-adam", notes="docs/report_e.md#e3-adam"),
          dict(base, row="B6a", config="configs/report_b.py:b6a_cnn_bn_es", metric="test",
               weights="best", notes="docs/report_b.md#b6a", **{"ours mean %": "99.45", "ours std": "0.11",
               "ours 95% CI": "99.18-99.72", "seeds": "3", "best-ckpt test %": "99.45", "epochs": "100",
               "epochs run": "43,23,33", "wall time per run": "153 s",
               "verdict": "reproduced (-0.08 pts)"}),
          dict(base, row="E6.1", notes="")]
  page = tables.markdown("E", rows, "Generated by a test.").splitlines()
  table = [l for l in page if l.startswith("| ")]
  assert table[0].count("|") == len(tables.MD_COLUMNS) + 1
  cells = {c[0]: c for c in ([x.strip() for x in l.split("|")[1:-1]] for l in table[1:])}
  assert cells["E3-adam"][-1] == "[note](../../docs/report_e.md#e3-adam)"
  assert cells["E6.1"][-1] == ""
  assert cells["B6a"] == ["B6a", "`report_b.py:b6a_cnn_bn_es`", "27.00", "test, best",
                          "99.45 ± 0.11 (3)", "99.18-99.72", "99.45", "43,23,33 of 100", "153 s",
                          "reproduced (-0.08 pts)", "[note](../../docs/report_b.md#b6a)"]
  assert cells["E3-adam"][3] == "val" and cells["E3-adam"][7] == "150"
  assert page[-1] == table[-1]  # nothing under the table


def test_tabulating_without_runs_keeps_the_committed_figures(tmp_path):
  """A fresh clone has no runs/: rewriting a table there must not blank measured rows."""
  out = tmp_path / "results"
  out.mkdir()
  committed = (pathlib.Path(catalogue.ROOT) / "experiments" / "results" / "D.csv")
  previous = {r["row"]: r for r in _table(committed)}
  stale = dict(previous["D2-30"], config="configs/report_d.py:another_variant")
  with open(out / "D.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=tables.COLUMNS)
    w.writeheader()
    w.writerows([previous["D1-30"], stale])
  reproduce.reproduce("D", tabulate=True, workroot=str(tmp_path / "runs"), out_dir=str(out))
  rows = {r["row"]: r for r in _table(out / "D.csv")}
  for column in tables.MEASURED:
    assert rows["D1-30"][column] == previous["D1-30"][column]
  assert rows["D1-30"]["ours mean %"] != ""
  # A row whose previous figures belong to another config is not carried over.
  assert rows["D2-30"]["ours mean %"] == "" and rows["D2-30"]["verdict"] != stale["verdict"]
  assert "Kept from the table this one replaced" in (out / "D.md").read_text()
  assert "on the machine that wrote it: D1-30." in (out / "D.md").read_text()


def test_a_row_whose_config_changed_under_its_name_is_not_kept(tmp_path):
  """E6.3's Adam epsilon (2026-12-08): the same variant name, another config. Its old
  figures are not carried over, and its status says why it has none."""
  out = tmp_path / "results"
  out.mkdir()
  committed = (pathlib.Path(catalogue.ROOT) / "experiments" / "results" / "D.csv")
  previous = {r["row"]: r for r in _table(committed)}
  with open(out / "D.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=tables.COLUMNS)
    w.writeheader()
    w.writerows([previous["D1-30"]])
  (out / ledger.NAME).write_text(",".join(ledger.FIELDS) + "\n" + "".join(
      f"D1-30,{k},80.0000,80.0000,30,1.0,cpu,1,seed{k},0123456789abcdef,abc,2026-12-01\n"
      for k in range(3)))
  reproduce.reproduce("D", tabulate=True, workroot=str(tmp_path / "runs"), out_dir=str(out))
  row = {r["row"]: r for r in _table(out / "D.csv")}["D1-30"]
  assert row["ours mean %"] == ""
  assert row["verdict"] == ("not run since its config changed (3 seed(s) of an earlier one "
                            "in seeds.csv)")
  assert "Kept from" not in (out / "D.md").read_text()
  assert (out / ledger.NAME).read_text().count("0123456789abcdef") == 3  # kept, not counted


def test_kept_rows_get_the_interval_and_verdict_of_todays_rule(tmp_path):
  """A row kept from the committed table (no run here) is judged again from its kept
  mean, std and seeds: an old +-1 std 'below' whose interval holds the figure reads
  'reproduced'; a CSV written before the CI column is read all the same."""
  out = tmp_path / "results"
  out.mkdir()
  committed = (pathlib.Path(catalogue.ROOT) / "experiments" / "results" / "D.csv")
  old = {r["row"]: r for r in _table(committed)}["D1-30"]
  old = {k: v for k, v in old.items() if k != "ours 95% CI"}  # the old column set
  published = float(old["published %"])
  old.update({"ours mean %": f"{published - 0.15:.2f}", "ours std": "0.07", "seeds": "3",
              "verdict": "below (-0.15 pts)"})
  with open(out / "D.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(old))
    w.writeheader()
    w.writerow(old)
  reproduce.reproduce("D", tabulate=True, workroot=str(tmp_path / "runs"), out_dir=str(out))
  row = {r["row"]: r for r in _table(out / "D.csv")}["D1-30"]
  assert row["verdict"] == "reproduced (-0.15 pts)"
  low, high = map(float, row["ours 95% CI"].split("-"))
  assert low < published < high and high - low == pytest.approx(2 * 0.174, abs=0.01)
  page = (out / "D.md").read_text()
  assert "95% t-based confidence interval" in page and "| 95% CI |" in page


def test_a_run_that_ran_nothing_or_failed_exits_non_zero(tmp_path, no_prepared_data):
  """Every chosen row pending data (or needing a GPU): exit 1 naming them, tables still
  written; a failed row exits 1 too."""
  env = dict(os.environ, TFDS_DATA_DIR=str(no_prepared_data))
  r = subprocess.run([sys.executable, "-m", "experiments.reproduce", "--report", "D",
                      "--rows", "D1,D3", "--workroot", str(tmp_path / "runs"), "--out",
                      str(tmp_path / "out")], cwd=catalogue.ROOT, env=env,
                     capture_output=True, text=True, timeout=600)
  assert r.returncode == 1, r.stderr
  assert "no chosen row could run" in r.stderr and "D3: pending data (cifar10" in r.stderr
  assert "D1: needs a GPU" in r.stderr and (tmp_path / "out" / "D.csv").exists()
  outcome = reproduce.Outcome()
  outcome.record(dict(id="A1", status="", runs=[{}]))
  assert outcome.problem() is None
  outcome.record(dict(id="A2", status="error: the TFDS data dir is damaged", runs=[]))
  assert outcome.problem() == "rows failed: A2: error: the TFDS data dir is damaged"


def test_reproduce_finds_the_shared_data_like_launch_sh(tmp_path, monkeypatch):
  monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
  shared = tmp_path / "shared" / "tensorflow_datasets"
  monkeypatch.setattr(catalogue, "ROOT", str(tmp_path / "checkout"))
  assert reproduce.default_data_dir() is None  # no such folder
  shared.mkdir(parents=True)
  assert reproduce.default_data_dir() == str(shared)
  monkeypatch.setenv("TFDS_DATA_DIR", "/somewhere/else")
  assert reproduce.default_data_dir() is None  # set: left alone


def _finished_seed(folder, config, seed, accuracy):
  """A finished one-seed run of config as training leaves it: config.json, results.json."""
  from digitjax import workdir as workdir_lib
  from digitjax import seed_stats

  c = config.copy_and_resolve_references()
  c.seed, c.num_seeds = seed, 1
  workdir = folder / f"seed{seed}"
  workdir_lib.create(str(workdir))
  workdir_lib.record_config(c, str(workdir))
  per_seed = [dict(seed=seed, test_accuracy=accuracy, test_accuracy_last_epoch=accuracy,
                   epochs_run=c.num_epochs)]
  (workdir / "results.json").write_text(json.dumps(dict(
      seed_stats.combine_seeds(per_seed), wall_seconds=10.0,
      provenance=dict(commit="a" * 40, date="2026-11-30T10:00:00+00:00"))))


def test_seeds_add_up_across_sessions_through_the_ledger(tmp_path):
  """runs/ is not kept between sessions: seed 0 run in one, seed 1 in the next, the table
  counts both (seeds.csv keeps them); a line of a config changed since is left out."""
  config = catalogue.load_config("configs/report_a.py:a1_perceptron")
  out = tmp_path / "results"
  _finished_seed(tmp_path / "session1" / "A1", config, 0, 0.91)
  reproduce.reproduce("A", rows="A1", tabulate=True, workroot=str(tmp_path / "session1"),
                      out_dir=str(out))
  _finished_seed(tmp_path / "session2" / "A1", config, 1, 0.93)
  reproduce.reproduce("A", rows="A1", tabulate=True, workroot=str(tmp_path / "session2"),
                      out_dir=str(out))
  row = {r["row"]: r for r in _table(out / "A.csv")}["A1"]
  assert row["seeds"] == "2" and row["ours mean %"] == "92.00"
  lines = _table(out / "seeds.csv")
  assert [(l["row"], l["seed"], l["commit"][:1], l["date"]) for l in lines] == [
      ("A1", "0", "a", "2026-11-30"), ("A1", "1", "a", "2026-11-30")]
  text = (out / "seeds.csv").read_text()  # another report's table rewrites the ledger:
  reproduce.reproduce("C", rows="C1", tabulate=True, workroot=str(tmp_path / "none"),
                      out_dir=str(out))
  assert (out / "seeds.csv").read_text() == text  # A1's lines exactly as written
  lines[0]["identity"] = "0" * 16  # as if seed 0 ran under another config
  with open(out / "seeds.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(lines[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
  reproduce.reproduce("A", rows="A1", tabulate=True, workroot=str(tmp_path / "none"),
                      out_dir=str(out))
  row = {r["row"]: r for r in _table(out / "A.csv")}["A1"]
  assert row["seeds"] == "1" and row["ours mean %"] == "93.00"
  assert len(_table(out / "seeds.csv")) == 2  # kept in the file all the same


@pytest.mark.parametrize("report", "ABCDE")
def test_committed_tables_link_every_row_note_and_every_note_is_a_row(report):
  """A row's note lives once, in docs/report_<x>.md under "Row notes"; the committed table
  links it. A note added there reaches the table when it is regenerated (`python -m
  experiments.reproduce --report X --tabulate`); a note under a misspelt id would never."""
  ids = [row.id for row in catalogue.rows(report)]
  noted = tables.noted_rows(report)
  assert noted and not set(noted) - set(ids), f"notes for no row of {report}: {noted}"
  assert len(noted) == len(set(noted)), f"a row with two notes: {noted}"
  page = (pathlib.Path(catalogue.ROOT) / "experiments" / "results" / f"{report}.md").read_text()
  unlinked = [i for i in noted if f"(../../docs/report_{report.lower()}.md#"
              f"{tables.anchor(i)})" not in page]
  assert not unlinked, (f"{report}.md does not link the notes of {unlinked}: run "
                        f"`python -m experiments.reproduce --report {report} --tabulate`")


def test_a_row_notes_anchor_is_githubs():
  assert [tables.anchor(i) for i in ("E6.1", "D1-30", "E2-adam", "B6a", "Row notes")] == [
      "e61", "d1-30", "e2-adam", "b6a", "row-notes"]
