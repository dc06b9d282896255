"""Evaluating a trained run: the final test at training's end, `--mode=eval` of a
workdir's best checkpoint, and eval on another split or dataset.

Training's final test calls the very function `--mode=eval` does, so both print the same
figures to the last digit. Readers (eval, predict, load: digitjax.inference restores
through `restore` here) open checkpoints read-only and write nothing in the workdir.
"""
from __future__ import annotations

import contextlib
import os
import sys

import jax
import numpy as np

from digitjax import checkpoints, data, distributed, fingerprint, provenance, reporting
from digitjax import seed_stats, validation
from digitjax import trainer as trainer_lib
from digitjax import workdir as workdir_lib
from digitjax.callbacks import LoopState, holds_best
from digitjax.errors import UserError
from digitjax.saves import step_of

WHICH = ("best", "latest")


def final_test(trainer, state, loop: LoopState, ckpts, workdir: str) -> dict:
  """Test figures of the best state per seed (and of the last one where it differs)."""
  config, r = trainer.config, trainer.num_replicas
  results = evaluate_checkpoint(config, workdir, trainer=trainer, ckpts=ckpts,
                                quiet=True)
  per_seed = results["per_seed"]
  last_test = None
  if any(b != e for b, e in zip(loop.best_epoch, loop.epochs_run)):
    last_test, _ = trainer.evaluate(state, data.load_test(config))
  for k, res in enumerate(per_seed):
    mine = [h for h in loop.history if h["seed"] == trainer.seeds[k]]
    final = mine[-1] if mine else {}
    best = next((h for h in mine if h["epoch"] == loop.best_epoch[k]), {})
    # without a validation set (validation_fraction 0) no val keys, as in metrics.jsonl
    val = (dict(val_loss=best.get("val_loss"), val_accuracy=best.get("val_accuracy"))
           if validation.has_validation(config) else {})
    res.update(
        seed=trainer.seeds[k], epochs_run=loop.epochs_run[k],
        best_epoch=loop.best_epoch[k],
        stopped_early=not loop.active[k], train_loss=final.get("loss"),
        train_accuracy=final.get("accuracy"), **val,
        test_accuracy_last_epoch=(float(last_test["accuracy"][k]) if last_test
                                  else res["test_accuracy"]))
  results.update(seed_stats.combine_seeds(per_seed))  # the aggregate, now with val figures
  results.update(model=config.model.name, dataset=config.dataset.name, num_seeds=r,
                 devices=jax.device_count(), processes=jax.process_count(),
                 device_kind=jax.devices()[0].device_kind,
                 train_seconds=loop.train_seconds,
                 steps_per_second=step_of(state) / max(loop.train_seconds, 1e-9),
                 provenance=provenance.record(config))
  return results


def evaluate_checkpoint(config, workdir: str, trainer: trainer_lib.Trainer | None = None,
                        ckpts: checkpoints.Checkpoints | None = None,
                        quiet: bool = False) -> dict:
  """Restores the best checkpoint and evaluates it on the test split.

  The end of training calls this very function (with its trainer and checkpoints, quiet),
  so `--mode=eval` on a finished workdir prints the test accuracy recorded in
  results.json, to the last digit. --mode=eval itself only reads: its checkpoints are
  opened read-only, it prints the figures and writes nothing (a run on a read-only
  archive, or one a training is writing meanwhile, is evaluated all the same).
  """
  checkpoints.require_best(workdir)
  from_training = ckpts is not None
  if from_training:  # its own trainer and checkpoints, which training closes
    state, loop, evaluated = _restore_for_eval(trainer, ckpts, config, workdir)
  else:
    workdir_lib.check_config(config, workdir, reading=True)
    trainer, state, loop, evaluated = _read_for_eval(config, workdir)
  test = data.load_test(config)
  metrics, preds = trainer.evaluate(state, test)
  per_seed = []
  for k in range(trainer.num_replicas):
    cm = reporting.confusion_matrix(test.labels, preds[k], trainer.info.num_classes)
    per_seed.append(dict(
        seed=trainer.seeds[k], test_loss=float(metrics["loss"][k]),
        test_accuracy=float(metrics["accuracy"][k]), test_examples=len(test),
        checkpoint_step=int(distributed.to_host(state.step)[k]),
        per_class=reporting.per_class(cm, trainer.info.class_names),
        confusion_matrix=cm.tolist()))
  total = sum(np.array(p["confusion_matrix"]) for p in per_seed)
  # every seed's figures, and their aggregate: means, stds and the pooled confusion matrix
  results = dict(seed_stats.combine_seeds(per_seed), test_examples=len(test),
                 confusion_matrix=total.tolist(),
                 per_class=reporting.per_class(total, trainer.info.class_names))
  if evaluated:
    results["evaluated"] = evaluated
  if not quiet:
    print(f"Test (best checkpoint, epoch{'s' if len(per_seed) > 1 else ''} "
          f"{', '.join(map(str, loop.best_epoch))}): {reporting.test_summary(results)}")
  if from_training and distributed.is_main_process():
    title = reporting.confusion_title(config.name, loop.best_epoch, results["test_accuracy"])
    reporting.plot_confusion(total, trainer.info.class_names,
                             os.path.join(workdir, "confusion_matrix.png"), title=title)
  return results


def _read(trainer: trainer_lib.Trainer, ckpts: checkpoints.Checkpoints, config,
          which: str):
  """The `which` checkpoint's (state, meta), or None when every step of it is unreadable:
  the one way every reader restores. A checkpoint of another config is refused."""
  read = ckpts.restore_best if which == "best" else ckpts.restore_latest
  return read(trainer.abstract_state(), fingerprint.checkpoint_check(config, ckpts.read_only))


def _restore_for_eval(trainer: trainer_lib.Trainer, ckpts: checkpoints.Checkpoints, config,
                      workdir: str):
  """(state, loop, evaluated) of the best checkpoint, else of the latest (evaluated then
  says why, unless the latest holds the same best state)."""
  restored, evaluated = _read(trainer, ckpts, config, "best"), None
  if restored is None:  # the best lost: the latest, which may hold the same state
    restored = _read(trainer, ckpts, config, "latest")
    if restored is None:
      raise UserError(f"every checkpoint in {workdir} is unreadable; train it again "
                      "with --fresh (the old run is set aside, not deleted).")
    latest = LoopState.from_meta(restored[1])
    if holds_best(latest):
      print(f"note: the best checkpoint in {workdir} is missing or unreadable; the latest "
            "one holds the same best state, evaluating it.", file=sys.stderr)
    else:
      evaluated = (f"latest checkpoint (epoch {latest.epoch}, step "
                   f"{int(np.max(restored[0].step))}): the best (epoch "
                   f"{', '.join(map(str, latest.best_epoch))}) is missing or unreadable")
      print(f"warning: evaluating the {evaluated}. results.json records it as "
            "'evaluated'.", file=sys.stderr)
  return trainer.replicate(restored[0]), LoopState.from_meta(restored[1]), evaluated


def _reader(workdir: str):
  """The workdir's checkpoints opened read-only (a reader never moves a file), closed on
  leaving the with block."""
  return contextlib.closing(checkpoints.Checkpoints(workdir, read_only=True))


def _read_for_eval(config, workdir: str):
  """(trainer, state, loop, evaluated): _restore_for_eval for a reader."""
  trainer = trainer_lib.Trainer(config, steps_per_epoch=1)
  with _reader(workdir) as ckpts:
    return (trainer, *_restore_for_eval(trainer, ckpts, config, workdir))


def _has_steps(folder: str) -> bool:
  return os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder))


def restore(workdir: str, config, which: str = "best"):
  """(trainer, state): the `which` checkpoint's TrainState (leading seed axis) and the
  Trainer that describes it, for load and eval on another split."""
  if which not in WHICH:
    raise UserError(f"which={which!r}: choose 'best' (the best validation checkpoint) or "
                    "'latest' (the newest saved state).")
  if not _has_steps(os.path.join(workdir, "checkpoints", which)):
    raise UserError(f"{workdir} holds no {which} checkpoint. Train first (--mode=train) "
                    "or point at a trained run.")
  trainer = trainer_lib.Trainer(config, steps_per_epoch=1)
  with _reader(workdir) as ckpts:
    restored = _read(trainer, ckpts, config, which)
  if restored is None:
    raise UserError(f"every {which} checkpoint in {workdir} is unreadable; retrain.")
  return trainer, restored[0]


def evaluate_on(config, workdir: str, split: str | None = None,
                dataset: str | None = None) -> dict:
  """The best checkpoint's test loss and accuracy (per seed) on another split and/or
  another dataset of the same image shape and number of classes; prints one line and
  writes nothing in the workdir."""
  checkpoints.require_best(workdir)
  workdir_lib.check_config(config, workdir, reading=True)
  other = config.copy_and_resolve_references()
  if dataset:
    mine, theirs = data.DATASETS[config.dataset.name], data.DATASETS.get(dataset)
    if theirs is None:
      raise UserError(f"--eval_dataset={dataset}: unknown dataset; known: "
                      f"{', '.join(data.DATASETS)}.")
    if (theirs.num_classes, theirs.image_shape[2]) != (mine.num_classes, mine.image_shape[2]) \
        or (not config.dataset.image_size and theirs.image_shape != mine.image_shape):
      raise UserError(f"--eval_dataset={dataset}: its images {theirs.image_shape} and "
                      f"{theirs.num_classes} classes do not fit this run's model "
                      f"({mine.image_shape}, {mine.num_classes} classes).")
    other.dataset.name = dataset
  if split:
    other.dataset.test_split = split
    other.dataset.max_test_examples = 0
  trainer, state, _, evaluated = _read_for_eval(config, workdir)
  test = data.load_test(other)
  metrics, _ = trainer.evaluate(state, test)
  out = dict(dataset=other.dataset.name, split=other.dataset.test_split,
             test_examples=len(test), seeds=trainer.seeds,
             test_loss=[float(v) for v in metrics["loss"]],
             test_accuracy=[float(v) for v in metrics["accuracy"]])
  if evaluated:
    out["evaluated"] = evaluated
  acc = ", ".join(reporting.percent(a) for a in out["test_accuracy"])
  loss = ", ".join(f"{v:.4f}" for v in out["test_loss"])
  print(f"Eval on {out['dataset']} {out['split']!r} ({len(test)} images, best checkpoint): "
        f"loss {loss}, accuracy {acc}" + (f" (seeds {', '.join(map(str, trainer.seeds))})"
                                          if len(trainer.seeds) > 1 else ""))
  return out
