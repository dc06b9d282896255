"""What a run shows and leaves behind: epoch lines, metrics files, plots, results.

- one Keras-style line per epoch on stdout;
- metrics.jsonl (one JSON object per epoch, rewritten from the checkpointed history so it
  never holds an epoch twice after a resume) and TensorBoard events under tb/;
- history.png (loss and accuracy, train vs val), confusion_matrix.png and per-class
  precision/recall on test, results.json.
"""
from __future__ import annotations

import json
import os

import numpy as np


def epoch_lines(records: list[dict], num_epochs: int) -> list[str]:
  """One Keras-style line per record; prefixed by the seed when several train at once."""
  several = len({r["seed"] for r in records}) > 1
  return [(f"[seed {r['seed']}] " if several else "") + epoch_line(r, num_epochs)
          for r in records]


def epoch_line(record: dict, num_epochs: int) -> str:
  return (f"Epoch {record['epoch']}/{num_epochs} - {record['time']:.1f}s - "
          f"loss: {record['loss']:.4f} - accuracy: {record['accuracy']:.4f} - "
          f"val_loss: {record['val_loss']:.4f} - val_accuracy: {record['val_accuracy']:.4f}"
          f" - lr: {record['lr']:.2e}")


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


class TensorBoard:
  """Scalars for TensorBoard (tensorboardX: event files without TensorFlow's writer)."""

  def __init__(self, workdir: str):
    from tensorboardX import SummaryWriter
    self.writer = SummaryWriter(os.path.join(workdir, "tb"))

  def write(self, record: dict, prefix: str = ""):
    for key, value in record.items():
      if key not in ("epoch", "seed") and isinstance(value, (int, float)):
        self.writer.add_scalar(prefix + key, value, record["epoch"])
    self.writer.flush()

  def close(self):
    self.writer.close()


SEED_STATS = ("test_loss", "test_accuracy", "test_accuracy_last_epoch", "val_loss",
              "val_accuracy", "train_loss", "train_accuracy", "epochs_run", "best_epoch")


def combine_seeds(per_seed: list[dict]) -> dict:
  """Mean and standard deviation (ddof=1) over seeds of each headline figure."""
  out = dict(per_seed=per_seed, seeds=[p["seed"] for p in per_seed])
  for key in SEED_STATS:
    values = [p[key] for p in per_seed if p.get(key) is not None]
    if values:
      out[key] = float(np.mean(values))
      out[key + "_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
  return out


def test_summary(results: dict) -> str:
  if "per_seed" in results:
    return (f"accuracy {results['test_accuracy']:.4f} ± {results['test_accuracy_std']:.4f} "
            f"over {len(results['per_seed'])} seeds")
  return f"loss {results['test_loss']:.4f}, accuracy {results['test_accuracy']:.4f}"


def plot_history(history: list[dict], path: str) -> None:
  """Loss and accuracy per epoch, train (solid) vs val (dashed), one colour per seed."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  seeds = sorted({r["seed"] for r in history})
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, metric in zip(axes, ("loss", "accuracy")):
    for i, seed in enumerate(seeds):
      mine = [r for r in history if r["seed"] == seed]
      tag = f" (seed {seed})" if len(seeds) > 1 else ""
      epochs = [r["epoch"] for r in mine]
      ax.plot(epochs, [r[metric] for r in mine], color=f"C{i}", label="train" + tag)
      ax.plot(epochs, [r["val_" + metric] for r in mine], "--", color=f"C{i}",
              label="val" + tag)
    ax.set_xlabel("epoch")
    ax.set_title(metric)
    ax.legend()
    ax.grid(alpha=0.3)
  fig.tight_layout()
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


def plot_confusion(cm: np.ndarray, class_names, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  n = len(class_names)
  fig, ax = plt.subplots(figsize=(1 + 0.6 * n, 1 + 0.6 * n))
  ax.imshow(cm, cmap="Blues")
  for i in range(n):
    for j in range(n):
      ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
              color="white" if cm[i, j] > cm.max() / 2 else "black")
  ax.set_xticks(range(n), class_names, rotation=45, ha="right")
  ax.set_yticks(range(n), class_names)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  ax.set_title("test confusion matrix")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
