"""Plots, checked on the figure objects (ticks, bands, colour bars), not on pixels."""
import json

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from digitjax import reporting
from experiments.sweep import names as sweep_names
from experiments.sweep import summary as sweep_summary


def _history(seeds, epochs=7):
  rng = np.random.default_rng(0)
  out = []
  for s in seeds:
    for e in range(1, epochs + 1):
      val_loss = 1 / e + (0.05 * (e - 4) ** 2 if e > 4 else 0) + 0.01 * rng.random()
      out.append(dict(seed=s, epoch=e, loss=1 / e, accuracy=1 - 0.5 / e,
                      val_loss=val_loss, val_accuracy=1 - 0.6 / e))
  return out


def _xticks_are_integers(ax):
  ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
  return ticks and all(float(t).is_integer() for t in ticks)


def test_history_has_integer_epoch_ticks_the_best_epoch_and_the_run_in_its_title():
  fig = reporting.history_figure(_history([3]), name="report_b/b6", monitor="val_loss")
  assert fig._suptitle.get_text() == "report_b/b6, seed 3"
  for ax in fig.axes:
    fig.canvas.draw()
    assert _xticks_are_integers(ax), ax.get_xticks()
    best = [l for l in ax.get_lines() if l.get_label().startswith("best val_loss")]
    assert len(best) == 1 and best[0].get_xdata()[0] == 4  # val_loss lowest at epoch 4
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]  # one seed
  plt.close(fig)


def test_history_draws_accuracy_in_percent_on_labelled_axes():
  history = _history([0])
  fig = reporting.history_figure(history)
  loss_ax, acc_ax = fig.axes
  assert loss_ax.get_ylabel() == "loss (cross-entropy)" and acc_ax.get_ylabel() == "accuracy (%)"
  assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
  val = [l for l in acc_ax.get_lines() if l.get_label() == "val"][0]
  np.testing.assert_allclose(val.get_ydata(), [100 * r["val_accuracy"] for r in history])
  plt.close(fig)


def test_epoch_lines_and_test_summaries_give_accuracy_in_percent():
  record = dict(epoch=2, time=3.0, loss=0.1, accuracy=0.98765, val_loss=0.2,
                val_accuracy=0.9943, lr=1e-3)
  assert reporting.epoch_line(record, 30) == (
      "Epoch 2/30 3s loss 0.100 acc 98.77% val_loss 0.200 val_acc 99.43% lr 0.001")
  long = dict(record, epoch=150, time=867.3, loss=1.51344, val_loss=0.88491, lr=3e-4)
  assert len(reporting.epoch_line(long, 150)) <= 80  # a report-E epoch fits a terminal
  one = dict(per_seed=[{}], test_loss=0.02, test_accuracy=0.9943)
  assert reporting.test_summary(one) == "loss 0.0200, accuracy 99.43%"


def test_many_seeds_are_a_mean_line_and_a_min_max_band_not_a_line_each():
  history = _history(range(20))
  history = [r for r in history if not (r["seed"] == 5 and r["epoch"] > 5)]  # stopped early
  fig = reporting.history_figure(history, name="sweep point", monitor="val_accuracy")
  assert fig._suptitle.get_text() == "sweep point, seeds 0-19 (20)"
  for ax, metric in zip(fig.axes, ("loss", "accuracy")):
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # train and val
    assert len(ax.get_lines()) == 3  # train mean, val mean, best epoch
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 5 and "val (min-max over seeds)" in labels
    assert "best val_accuracy (mean): epoch 7" in labels
    train = ax.get_lines()[0]
    assert list(train.get_xdata()) == list(range(1, 8))
  plt.close(fig)


def test_plot_history_names_the_run_from_its_config(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(dict(name="report_a/a1", monitor="val_loss")))
  path = tmp_path / "history.png"
  reporting.plot_history(_history([0, 1, 2]), str(path))
  assert path.stat().st_size > 10_000
  assert reporting._run_info(str(tmp_path)) == ("report_a/a1", "val_loss")
  assert reporting._run_info(str(tmp_path / "nowhere")) == ("nowhere", "val_loss")


def test_confusion_matrix_has_counts_a_row_normalised_view_and_colour_bars(tmp_path):
  cm = np.array([[50, 2, 0], [5, 40, 5], [0, 0, 10]])
  fig = reporting.confusion_figure(cm, ["a", "b", "c"])
  panels = [ax for ax in fig.axes if ax.get_images()]
  colour_bars = [ax for ax in fig.axes if ax not in panels]
  assert len(panels) == 2 and len(colour_bars) == 2
  counts, norm = (ax.get_images()[0].get_array() for ax in panels)
  assert np.array_equal(counts, cm)
  assert np.allclose(norm.sum(1), 1) and norm[1, 1] == pytest.approx(0.8)
  assert "40" in [t.get_text() for t in panels[0].texts]
  assert "0.80" in [t.get_text() for t in panels[1].texts]
  assert panels[1].get_images()[0].get_clim() == (0, 1)
  plt.close(fig)
  reporting.plot_confusion(cm, ["a", "b", "c"], str(tmp_path / "cm.png"))
  assert (tmp_path / "cm.png").exists()


def _sweep_rows(values, other=("sgd",)):
  return [dict(setting={"lr": v, "opt": o}, mean=0.9, std=0.01, ci=(0.88, 0.92))
          for o in other for v in values]


@pytest.mark.parametrize("values,scale", [([1e-4, 1e-3, 1e-2, 1e-1], "log"),
                                          ([0.1, 0.2, 0.5], "linear")])
def test_sweep_plot_spaces_numeric_values_by_value(values, scale):
  sweep = dict(name="lr", metric="test_accuracy", seeds=3, axes={"lr": values, "opt": ["sgd"]})
  fig = sweep_summary.figure(sweep, _sweep_rows(values))
  ax = fig.axes[0]
  assert ax.get_xscale() == scale
  assert list(ax.get_lines()[0].get_xdata()) == values  # at their values, not 0, 1, 2
  assert list(ax.get_xticks()) == pytest.approx(values)
  plt.close(fig)


def test_sweep_plot_keeps_categorical_values_in_order():
  values = [(32,), (64,), (512,)]
  sweep = dict(name="h", metric="test_accuracy", seeds=3, axes={"lr": values, "opt": ["sgd"]})
  fig = sweep_summary.figure(sweep, _sweep_rows(values))
  ax = fig.axes[0]
  assert list(ax.get_lines()[0].get_xdata()) == [0, 1, 2] and ax.get_xscale() == "linear"
  assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "512"]
  plt.close(fig)


def test_the_confusion_matrix_is_titled_with_the_run_its_epoch_and_accuracy(tmp_path,
                                                                             monkeypatch):
  cm = np.array([[50, 2, 0], [5, 40, 5], [0, 0, 10]])  # 100 of 112 right
  (tmp_path / "config.json").write_text(json.dumps(dict(name="report_b/b3")))
  title = reporting.confusion_title("report_b/b3", [14], 100 / 112)
  assert title == "report_b/b3: test confusion matrix, checkpoint of epoch 14, accuracy 89.29%"
  assert "epochs 14, 9" in reporting.confusion_title("x", [14, 9], 0.9)
  titles, original = [], reporting.confusion_figure
  monkeypatch.setattr(reporting, "confusion_figure",
                      lambda *a: titles.append(a[2]) or original(*a))
  reporting.plot_confusion(cm, ["a", "b", "c"], str(tmp_path / "cm.png"), title=title)
  reporting.plot_confusion(cm, ["a", "b", "c"], str(tmp_path / "cm.png"))  # the default
  assert titles == [title, "report_b/b3: test confusion matrix, accuracy 89.29%"]
  fig = reporting.confusion_figure(cm, ["a", "b", "c"], title)
  assert fig._suptitle.get_text() == f"{title} (112 examples)"
  plt.close(fig)


@pytest.mark.parametrize("values", [[1e-4, 1e-3, 1e-2], [(32,), (64,), (512,)]])
def test_the_sweep_plot_rings_the_point_picked_on_val(values):
  """The plot shows test accuracy; the point picked on val (not the highest there) is
  marked, at its own x, numeric or categorical."""
  sweep = dict(name="s", metric="test_accuracy", seeds=3, axes={"lr": values, "opt": ["sgd"]})
  rows = _sweep_rows(values)
  for k, row in enumerate(rows):
    row.update(name=f"lr={sweep_names.slug(row['setting']['lr'])},opt=sgd", mean=0.9 + 0.01 * k)
  fig = sweep_summary.figure(sweep, rows, best=rows[1])
  ax = fig.axes[0]
  ring = [l for l in ax.get_lines() if l.get_label().startswith("picked on val_accuracy")]
  assert len(ring) == 1 and ring[0].get_label().endswith(rows[1]["name"])
  x = values[1] if isinstance(values[1], float) else 1
  assert list(ring[0].get_xdata()) == [x] and list(ring[0].get_ydata()) == [0.91]
  assert any(t.get_text() == ring[0].get_label() for t in ax.get_legend().get_texts())
  plt.close(fig)
  assert not [l for l in sweep_summary.figure(sweep, rows).axes[0].get_lines()
              if l.get_label().startswith("picked")]
  plt.close("all")
