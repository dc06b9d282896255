"""The reports as pictures: `reproduce --tabulate` draws experiments/results/<report>.png,
each row's published figure against our mean, its 95% CI and the seeds, from the committed
tables and seeds.csv alone (no runs/)."""
import pathlib
import shutil
import subprocess
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.image
import matplotlib.pyplot as plt
import pytest

from conftest import ROOT
from experiments.reproduce import tables

ROW = dict.fromkeys(tables.COLUMNS, "")


def _row(**cells):
  return {**ROW, **{k.replace("_", " "): v for k, v in cells.items()}}


def test_each_row_is_a_strip_published_against_our_mean_ci_and_seeds():
  rows = [
      dict(_row(row="X1", verdict="reproduced (+0.20 pts)"), **{
          "published %": "98.00", "ours mean %": "98.20", "ours 95% CI": "97.95-98.45"}),
      dict(_row(row="X2", verdict="below (-1.00 pts)"), **{  # kept: no seeds here
          "published %": "99.00", "ours mean %": "98.00", "ours 95% CI": "97.80-98.20"}),
      dict(_row(row="X3", verdict="needs a GPU: not run (--heavy runs it)"),
           **{"published %": "73.93"}),
      _row(row="X4", verdict="no published figure"),
  ]
  entries = [dict(id="X1", runs=[dict(accuracy=a) for a in (98.1, 98.2, 98.3)]),
             dict(id="X2", runs=[]), dict(id="X3", runs=[]), dict(id="X4", runs=[])]
  fig = tables.figure("X", rows, entries)
  strips = [ax for ax in fig.axes if ax.get_yticklabels()]
  assert [ax.get_yticklabels()[0].get_text() for ax in strips] == ["X1", "X2", "X3", "X4"]
  x1, x2, x3, x4 = strips
  lines = lambda ax: {tuple(l.get_xdata()): l for l in ax.get_lines()}
  assert (98.0, 98.0) in lines(x1)  # the published figure, a vertical line
  assert (98.1, 98.2, 98.3) in lines(x1)  # each seed
  (bar,) = [c for c in x1.containers]  # the mean with its CI
  assert list(bar.lines[0].get_xdata()) == [98.2]
  caps = sorted(x for cap in bar.lines[1] for x in cap.get_xdata())
  assert caps == pytest.approx([97.95, 98.45])
  texts = lambda ax: [t.get_text() for t in ax.texts]
  assert texts(x1) == ["reproduced (+0.20 pts)"]
  dots = lambda ax: [l for l in ax.get_lines() if set(l.get_ydata()) == {-0.35}]
  assert len(dots(x1)) == 1 and not dots(x2)
  assert len(x2.containers) == 1 and (99.0, 99.0) in lines(x2)
  assert not x3.containers and "published 73.93%" in texts(x3)
  assert "no published figure, not run" in texts(x4)
  lo, hi = x1.get_xlim()
  assert lo < 97.95 and hi > 98.45  # every point inside its strip's own scale
  assert "no seed dots: X2 kept from the committed table" in " ".join(
      t.get_text() for t in fig.texts)
  plt.close(fig)


def test_tabulate_draws_the_figure_from_the_committed_ledger_without_runs(tmp_path):
  """seeds.csv's seeds are the dots (D3, D4 hold three each); the tables and ledger come
  back as they were committed."""
  out = tmp_path / "results"
  committed = pathlib.Path(ROOT) / "experiments" / "results"
  out.mkdir()
  for name in ("D.csv", "seeds.csv"):
    shutil.copy(committed / name, out / name)
  r = subprocess.run([sys.executable, "-m", "experiments.reproduce", "--report", "D",
                      "--tabulate", "--out", str(out), "--workroot", str(tmp_path / "runs")],
                     cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr
  assert not (tmp_path / "runs").exists()
  assert (out / "D.csv").read_text() == (committed / "D.csv").read_text()
  assert (out / "seeds.csv").read_text() == (committed / "seeds.csv").read_text()
  png = out / "D.png"
  assert 10_000 < png.stat().st_size < 150_000
  assert matplotlib.image.imread(png).shape[1] == 800  # 8 in at 100 dpi


def test_the_figures_seed_dots_are_the_ledgers_seeds(tmp_path, monkeypatch):
  from experiments.reproduce import run

  out = tmp_path / "results"
  out.mkdir()
  for name in ("D.csv", "seeds.csv"):
    shutil.copy(pathlib.Path(ROOT) / "experiments" / "results" / name, out / name)
  drawn = {}
  monkeypatch.setattr(tables, "figure", lambda report, rows, entries: drawn.update(
      rows={r["row"]: r for r in rows}, seeds={e["id"]: e["runs"] for e in entries}) or
      plt.figure())
  run.reproduce("D", tabulate=True, workroot=str(tmp_path / "runs"), out_dir=str(out))
  ledger = [l.split(",") for l in (out / "seeds.csv").read_text().splitlines()[1:]]
  d3 = sorted(float(l[2]) for l in ledger if l[0] == "D3")
  assert sorted(e["accuracy"] for e in drawn["seeds"]["D3"]) == d3 and len(d3) == 3
  assert drawn["rows"]["D3"]["seeds"] == "3"
  assert drawn["seeds"]["D1"] == [] and drawn["rows"]["D1"]["published %"] == "98.29"
  plt.close("all")
