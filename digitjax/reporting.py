"""What a run shows and leaves behind: epoch lines, metrics files, plots, results.

- one Keras-style line per epoch on stdout (digitjax.progress: a live line on a terminal);
- metrics.jsonl (one JSON object per epoch, rewritten from the checkpointed history so it
  never holds an epoch twice after a resume) and TensorBoard events under tb/ (train and
  val on one chart, lr, the config, figures and hparams);
- history.png (loss and accuracy, train vs val, integer epochs, the best epoch marked;
  several seeds: mean and min-max band), confusion_matrix.png (counts and row-normalised,
  colour bars) and per-class precision/recall on test, results.json.
"""
from __future__ import annotations

import json
import os

import numpy as np

from digitjax import seed_stats


def epoch_lines(records: list[dict], num_epochs: int) -> list[str]:
  """One Keras-style line per record; prefixed by the seed when several train at once."""
  several = len({r["seed"] for r in records}) > 1
  return [(f"[seed {r['seed']}] " if several else "") + epoch_line(r, num_epochs)
          for r in records]


def percent(fraction: float) -> str:
  """An accuracy as people read it here, as the reports print it: 0.99431 -> '99.43%'."""
  return f"{100 * fraction:.2f}%"


def epoch_line(record: dict, num_epochs: int) -> str:
  """Keras's epoch line in 80 columns (up to epoch 999 of epochs under 1,000 s):
  'Epoch 2/30 3s loss 0.100 acc 98.77% val_loss 0.200 val_acc 99.43% lr 0.001' (its val
  figures only where the run validates; metrics.jsonl keeps every digit)."""
  val = (f"val_loss {record['val_loss']:.3f} val_acc {percent(record['val_accuracy'])} "
         if "val_loss" in record else "")
  return (f"Epoch {record['epoch']}/{num_epochs} {record['time']:.0f}s "
          f"loss {record['loss']:.3f} acc {percent(record['accuracy'])} "
          f"{val}lr {record['lr']:.2g}")


def write_json(path: str, obj) -> None:
  """Writes atomically: a reader (or a crash) never sees half a file."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
    f.write("\n")
  os.replace(tmp, path)


def write_history(workdir: str, history: list[dict]) -> None:
  tmp = os.path.join(workdir, "metrics.jsonl.tmp")
  with open(tmp, "w") as f:
    for record in history:
      f.write(json.dumps(record, sort_keys=True) + "\n")
  os.replace(tmp, os.path.join(workdir, "metrics.jsonl"))


def _summary_writer():
  """tensorboardX's SummaryWriter, imported without PyTorch. tensorboardX imports torch
  whenever it is installed (the bench extra installs it), which cost every training run
  3.7-4.0 s of start-up for nothing: digitjax hands it numpy values. While tensorboardX
  loads, `import torch` fails (a None entry in sys.modules), and tensorboardX goes on
  without it; anything that imports torch later gets the real one."""
  import sys

  if "torch" in sys.modules or "tensorboardX" in sys.modules:
    from tensorboardX import SummaryWriter
    return SummaryWriter
  sys.modules["torch"] = None
  try:
    from tensorboardX import SummaryWriter
  finally:
    del sys.modules["torch"]
  return SummaryWriter


class TensorBoard:
  """TensorBoard events under <workdir>/tb, written with tensorboardX (no TensorFlow).

  Keras's layout: train and val metrics go to the runs tb/train and tb/val under one tag
  (loss, accuracy), which TensorBoard draws on one chart, as it draws the runs of
  several workdirs on one chart. tb itself holds the learning rate and epoch time, the
  config as text (at each start), and at the end the history and confusion figures;
  tb/hparams holds the flattened config with the final val and test figures, so the
  HParams tab compares the runs under a --logdir. Several seeds: tags per seed
  ("seed3/loss"), figures and hparams over all of them, as in results.json.
  """

  def __init__(self, workdir: str, config, step: int = 0):
    SummaryWriter = _summary_writer()
    self.dir = os.path.join(workdir, "tb")
    self.main = SummaryWriter(self.dir)
    self.train = SummaryWriter(os.path.join(self.dir, "train"))
    self.val = SummaryWriter(os.path.join(self.dir, "val"))
    text = config.to_json_best_effort(indent=2, sort_keys=True)
    self.main.add_text("config", "    " + text.replace("\n", "\n    "), step)  # markdown code

  def write(self, record: dict, prefix: str = ""):
    epoch = record["epoch"]
    for metric in ("loss", "accuracy"):
      self.train.add_scalar(prefix + metric, record[metric], epoch)
      if "val_" + metric in record:  # a run without a validation set has none
        self.val.add_scalar(prefix + metric, record["val_" + metric], epoch)
    for key in ("lr", "time", "skipped_steps"):
      if key in record:
        self.main.add_scalar(prefix + key, record[key], epoch)
    for writer in (self.main, self.train, self.val):
      writer.flush()

  def finish(self, config, results: dict, history: list[dict], figures) -> None:
    """The end of a run: its figures and its hparams with the final val and test.
    figures: (tag, PNG path) pairs, the plots the run just saved in its workdir, shown
    as those very pixels (drawing a figure again, its text above all, cost each run
    about a second)."""
    step = max((r["epoch"] for r in history), default=0)
    for tag, path in figures:
      if os.path.exists(path):
        self.main.add_image(tag, _png_pixels(path), step, dataformats="HWC")
    from digitjax import config as config_lib
    flat = config_lib.flat(config)
    hparams = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
               for k, v in flat.items()}
    metrics = {f"hparam/{k}": results[k] for k in
               ("val_loss", "val_accuracy", "test_loss", "test_accuracy")
               if results.get(k) is not None}
    self.main.add_hparams(hparams, metrics, name="hparams", global_step=step)

  def close(self):
    for writer in (self.main, self.train, self.val):
      writer.close()


def _png_pixels(path: str) -> np.ndarray:
  """A PNG's pixels as uint8 RGB (H, W, 3)."""
  from PIL import Image

  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"))


def test_summary(results: dict) -> str:
  if len(results.get("per_seed", ())) > 1:
    s = seed_stats.summarize([p["test_accuracy"] for p in results["per_seed"]
                   if p.get("test_accuracy") is not None])
    ci = f" (95% CI {percent(s['ci'][0])}-{percent(s['ci'][1])})" if s["ci"] else ""
    return (f"accuracy {percent(results['test_accuracy'])} ± "
            f"{100 * results['test_accuracy_std']:.2f}{ci} over {len(results['per_seed'])} seeds")
  return f"loss {results['test_loss']:.4f}, accuracy {percent(results['test_accuracy'])}"


def _seeds_text(seeds: list[int]) -> str:
  if len(seeds) == 1:
    return f"seed {seeds[0]}"
  if seeds == list(range(seeds[0], seeds[-1] + 1)):
    return f"seeds {seeds[0]}-{seeds[-1]} ({len(seeds)})"
  return f"seeds {', '.join(map(str, seeds))}"


def _run_info(workdir: str) -> tuple[str, str]:
  """(run name, monitor) from workdir's config.json: the config's name, else the folder's."""
  name, monitor = os.path.basename(os.path.abspath(workdir)), "val_loss"
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      config = json.load(f)
    name = config.get("name") or name
    monitor = config.get("monitor") or monitor
  except (OSError, ValueError, AttributeError):
    pass
  return name, monitor


def history_figure(history: list[dict], name: str = "run", monitor: str = "val_loss"):
  """Loss and accuracy per epoch, train (solid) vs val (dashed), with integer epoch ticks
  and the best epoch (best `monitor`, the checkpoint digitjax keeps) marked. One seed:
  its lines. Several: the mean over seeds, a band from their min to max (seeds that
  stopped early drop out of later epochs), and the best epoch of the mean curve.
  Without a validation set (records without val figures): train lines only, and the
  last epoch marked, the one digitjax keeps then."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.ticker import MaxNLocator

  seeds = sorted({r["seed"] for r in history})
  by_epoch: dict[int, list[dict]] = {}
  for r in history:
    by_epoch.setdefault(r["epoch"], []).append(r)
  epochs = sorted(by_epoch)
  curve = lambda key, f: [f([r[key] for r in by_epoch[e]]) for e in epochs]
  pick = np.argmin if monitor == "val_loss" else np.argmax
  validated = all(monitor in r for r in history)
  best = None
  if epochs:
    best = epochs[int(pick(curve(monitor, np.mean)))] if validated else epochs[-1]
  mark = f"best {monitor}" if validated else "kept (no validation): last"
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, metric in zip(axes, ("loss", "accuracy")):
    scale = 100 if metric == "accuracy" else 1  # accuracy in percent, as everywhere
    lines = ((metric, "-", "train"), ("val_" + metric, "--", "val"))[:2 if validated else 1]
    for key, style, label in lines:
      color = "C0" if label == "train" else "C1"
      line = lambda f: scale * np.asarray(curve(key, f))
      if len(seeds) == 1:
        ax.plot(epochs, line(np.mean), style, color=color, label=label)
      else:
        ax.plot(epochs, line(np.mean), style, color=color, label=f"{label} (mean)")
        ax.fill_between(epochs, line(np.min), line(np.max), color=color,
                        alpha=0.2, linewidth=0, label=f"{label} (min-max over seeds)")
    if best is not None:
      ax.axvline(best, color="0.4", linestyle=":",
                 label=f"{mark}{' (mean)' if len(seeds) > 1 else ''}: epoch {best}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "loss (cross-entropy)")
    ax.set_title(metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  fig.suptitle(f"{name}, {_seeds_text(seeds)}")
  fig.tight_layout()
  return fig


def plot_history(history: list[dict], path: str, name: str | None = None,
                 monitor: str | None = None) -> None:
  """history_figure saved to path; name and monitor default to the run's config.json
  beside path (the workdir's)."""
  import matplotlib.pyplot as plt

  run_name, run_monitor = _run_info(os.path.dirname(path) or ".")
  fig = history_figure(history, name or run_name, monitor or run_monitor)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (labels, preds), 1)
  return cm


def per_class(cm: np.ndarray, class_names) -> list[dict]:
  """Precision and recall per class (rows of cm: true class, columns: predicted)."""
  tp = np.diag(cm).astype(float)
  predicted, actual = cm.sum(0), cm.sum(1)
  return [dict(name=str(name), support=int(actual[i]),
               precision=float(tp[i] / predicted[i]) if predicted[i] else 0.0,
               recall=float(tp[i] / actual[i]) if actual[i] else 0.0)
          for i, name in enumerate(class_names)]


def confusion_figure(cm: np.ndarray, class_names, title: str = "test confusion matrix"):
  """Two panels with a colour bar each: the counts, and the matrix normalised per row (the
  fraction of each true class predicted as each class; the diagonal is per-class recall).
  Cells carry their figure while the classes are few enough to read them."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  n = len(class_names)
  cm = np.asarray(cm)
  totals = cm.sum(1, keepdims=True)
  norm = np.divide(cm, totals, out=np.zeros(cm.shape, float), where=totals > 0)
  side = 1.5 + 0.55 * n
  fig, axes = plt.subplots(1, 2, figsize=(2 * side + 2, side + 0.5))
  panels = ((axes[0], cm, "counts", dict(), "d"),
            (axes[1], norm, "row-normalised (diagonal: recall)", dict(vmin=0, vmax=1), ".2f"))
  for ax, values, name, scale, fmt in panels:
    image = ax.imshow(values, cmap="Blues", **scale)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if n <= 30:
      top = values.max() if values.size else 0
      for i in range(n):
        for j in range(n):
          ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=7,
                  color="white" if values[i, j] > top / 2 else "black")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(name)
  fig.suptitle(f"{title} ({int(cm.sum())} examples)")
  fig.tight_layout()
  return fig


def confusion_title(name: str, epochs, accuracy: float) -> str:
  """What a confusion matrix shows: the run, its checkpoint's epoch (a seed's each) and
  the test accuracy, so a figure taken out of its workdir still says which model it is."""
  epochs = list(epochs)
  which = f"epoch{'s' if len(epochs) > 1 else ''} {', '.join(map(str, epochs))}"
  return f"{name}: test confusion matrix, checkpoint of {which}, accuracy {percent(accuracy)}"


def plot_confusion(cm: np.ndarray, class_names, path: str, title: str | None = None) -> None:
  """confusion_figure saved to path, headed by title (confusion_title gives the run, the
  checkpoint's epoch and the accuracy). By default: the run's name (config.json beside
  path) and the accuracy cm holds; only the caller knows the checkpoint's epoch."""
  import matplotlib.pyplot as plt

  if title is None:
    accuracy = np.trace(cm) / max(np.sum(cm), 1)
    name = _run_info(os.path.dirname(path) or ".")[0]
    title = f"{name}: test confusion matrix, accuracy {percent(accuracy)}"
  fig = confusion_figure(cm, class_names, title)
  fig.savefig(path, dpi=100)
  plt.close(fig)
