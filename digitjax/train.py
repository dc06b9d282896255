"""Training, read top to bottom: pre-flight checks, then the epoch loop.

`train_and_evaluate(config, workdir)` checks everything that can be checked before
training (the config against the workdir, the data, the state's memory, one evaluation
batch), builds the compiled programs (digitjax.trainer), resumes from the workdir's
latest checkpoint if there is one (digitjax.saves), and trains epoch by epoch: blocks of
steps, validation, Keras's callbacks (digitjax.callbacks), checkpoints, logs. The final
test is digitjax.evaluate's, the very one `--mode=eval` runs. The loop owns every side
effect; the steps (digitjax.steps) are pure.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time

import jax
import numpy as np

from digitjax import callbacks, ctrl_c, data, distributed, evaluate, models, progress
from digitjax import reporting
from digitjax import workdir as workdir_lib
from digitjax.callbacks import EpochSums, LoopState
from digitjax.errors import UserError
from digitjax.saves import Saves, step_of
from digitjax.trainer import TrainData, Trainer


def _steps_per_epoch(config, n: int) -> int:
  if config.batch_size % jax.device_count():
    raise UserError(f"batch_size={config.batch_size} must be a multiple of the "
                    f"{jax.device_count()} devices it is split over.")
  return n // config.batch_size


def _memory_bytes() -> int | None:
  """The memory of the device the state lives on: a GPU's limit, else this host's RAM."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError):
    return None


def check_state_fits(config, steps_per_epoch: int) -> None:
  """num_seeds replicates the whole training state; far too many would spend minutes
  setting up and compiling, then fail. Refused up front (from one seed's state, before
  any replica is built) when the state alone, with its gradients and the step's
  temporaries (taken as 4x), is beyond the device's memory."""
  one = config.copy_and_resolve_references()
  one.num_seeds = 1
  per_seed = sum(x.size * x.dtype.itemsize
                 for x in jax.tree.leaves(Trainer(one, steps_per_epoch).abstract_state()))
  nbytes, memory = per_seed * config.num_seeds, _memory_bytes()
  if memory and 4 * nbytes > memory:
    raise UserError(
        f"num_seeds={config.num_seeds} replicates the training state "
        f"({per_seed / 2**20:,.2f} MiB a seed) to {nbytes / 2**30:,.1f} GiB, beyond what "
        f"the {memory / 2**30:,.0f} GiB here can train with its gradients; lower "
        "--config.num_seeds (or run the seeds in several programs: --config.seed=K "
        "--config.num_seeds=M).")
  if config.num_seeds >= 16 and distributed.is_main_process():
    print(f"Compiling one program for {config.num_seeds} seeds side by side: "
          "compilation takes longer with more seeds.", flush=True)


def check_eval_batch(trainer: Trainer, state, split: data.Split) -> None:
  """Evaluates one batch of `split` (the val split, else the train split: the test
  split's shape) before training: an eval_batch_size beyond memory fails here, in one
  line, and not after the first epoch or at the final test. (Nothing changes:
  evaluation has no randomness and leaves the state alone; its program is reused.)"""
  bs = trainer.config.eval_batch_size
  try:
    trainer.evaluate(state, data.Split(split.images[:bs], split.labels[:bs]))
  except (MemoryError, jax.errors.JaxRuntimeError) as e:
    if not isinstance(e, MemoryError) and "RESOURCE_EXHAUSTED" not in str(e):
      raise
    raise UserError(f"evaluating one batch of eval_batch_size={bs} ran out of memory "
                    f"({type(e).__name__}); lower --config.eval_batch_size: it changes no "
                    "figure (evaluation batches are padded and masked).") from None


@dataclasses.dataclass
class _Run:
  """What every epoch of one training shares."""
  trainer: Trainer
  data: TrainData
  saves: Saves
  signals: ctrl_c.StopSignals
  workdir: str


class Clock:
  """Training time: each lap adds the seconds since the last one (or the epoch's start)
  to the epoch's sums and to the run's train_seconds."""

  def __init__(self):
    self.last = time.time()

  def lap(self, loop: LoopState, sums: EpochSums) -> None:
    now = time.time()
    sums.seconds += now - self.last
    loop.train_seconds += now - self.last
    self.last = now


def _print_summary(trainer: Trainer, workdir: str) -> dict:
  """Keras's model.summary() on stdout and in summary.txt; returns the parameter counts."""
  summary, totals = models.summary(trainer.model, trainer.input_shape,
                                   trainer.config.model.name)
  if distributed.is_main_process():
    print(summary)
    with open(os.path.join(workdir, "summary.txt"), "w") as f:
      f.write(summary + "\n")
  return totals


def _say_where(train_data: TrainData, config) -> None:
  if train_data.on_host and distributed.is_main_process():
    print(f"Training images stay in host memory ({train_data.images.nbytes / 2**20:,.0f} "
          f"MiB, dataset.placement={config.dataset.placement}); each block of steps is "
          "copied to the device while the one before it trains.")


def print_epoch(config, records: list[dict]) -> None:
  """Keras's epoch lines, one per replica (main process only)."""
  if distributed.is_main_process():
    for record, line in zip(records, reporting.epoch_lines(records, config.num_epochs)):
      skipped = record["skipped_steps"]
      print(line + (f" skipped {skipped}" if skipped else ""), flush=True)


def log_epoch(config, workdir: str, loop: LoopState, records: list[dict], tb) -> None:
  """metrics.jsonl and TensorBoard (main process only)."""
  if not distributed.is_main_process():
    return
  reporting.write_history(workdir, loop.history)
  for record in records:
    tb.write(record, prefix=f"seed{record['seed']}/" if config.num_seeds > 1 else "")


def _interrupted(signal_name: str, state, saves: Saves, workdir: str) -> dict:
  saves.ckpts.close()
  print(f"Received {signal_name}: saved a checkpoint at step {step_of(state)} in "
        f"{workdir}. Rerun the same command to resume.", file=sys.stderr)
  return dict(interrupted=signal_name, step=step_of(state))


def _write_results(trainer: Trainer, loop: LoopState, results: dict, workdir: str,
                   tb: reporting.TensorBoard | None) -> None:
  if not distributed.is_main_process():
    return
  figures = [("history", os.path.join(workdir, "history.png")),
             ("confusion_matrix", os.path.join(workdir, "confusion_matrix.png"))]
  if loop.history:  # the confusion matrix is plotted by evaluate.final_test
    reporting.plot_history(loop.history, figures[0][1])
  reporting.write_json(os.path.join(workdir, "results.json"), results)
  tb.finish(trainer.config, results, loop.history, figures)
  print(f"Test (best epoch{'s' if trainer.num_replicas > 1 else ''} "
        f"{', '.join(map(str, loop.best_epoch))}): {reporting.test_summary(results)}. "
        f"Results in {workdir}/results.json")


def train_epoch(run: _Run, state, loop: LoopState, epoch: int, clock: Clock):
  """Trains the rest of epoch `epoch`, block by block; returns (state, its sums), the
  sums None when a signal stopped it (after a checkpoint). Signals are checked after
  every block and at the epoch's end, before validation: a stop there saves the trained
  epoch with step_in_epoch = steps_per_epoch, and a resume starts at its validation. Step
  metrics come to the host every log_every_steps, at checkpoint steps and on signals:
  the only syncs, and the only moments the progress line (a terminal's) moves."""
  trainer, signals, saves, workdir = run.trainer, run.signals, run.saves, run.workdir
  config, spe = trainer.config, trainer.steps_per_epoch
  every = config.checkpoint_every_steps
  sums = loop.partial or EpochSums.zeros(trainer.num_replicas)
  active = trainer.replicate(np.array(loop.active))
  pending, pending_steps = [], 0
  last = loop.history[-1]["time"] if loop.history else None
  with progress.EpochProgress(epoch, config.num_epochs, spe, loop.step_in_epoch,
                              last) as bar:
    for b, n, block in run.data.blocks(epoch, loop.step_in_epoch):
      state, metrics = trainer.train_steps(state, *block, n, active)
      first = (epoch - 1) * spe + b + 1
      pending.append((first, metrics))
      pending_steps += n
      at_checkpoint = bool(every and (first + n - 1) % every == 0)
      if pending_steps >= config.log_every_steps or signals.received or at_checkpoint:
        for f, m in pending:
          callbacks.tally(sums, loop, f, distributed.to_host(m), trainer, epoch, workdir)
        pending, pending_steps = [], 0
        bar.update(b + n, *sums.running_means())
      if (signals.received or at_checkpoint) and b + n < spe:
        clock.lap(loop, sums)
        loop.step_in_epoch, loop.partial = b + n, sums
        saves.save(state, loop, step=first + n - 1)
        if signals.received:
          return state, None
  for f, m in pending:
    callbacks.tally(sums, loop, f, distributed.to_host(m), trainer, epoch, workdir)
  if signals.received:  # also when the epoch was one block: stop before validating
    clock.lap(loop, sums)
    loop.step_in_epoch, loop.partial = spe, sums
    saves.save(state, loop, step=epoch * spe)
    return state, None
  return state, sums


def train_and_evaluate(config, workdir: str, fresh: bool = False, on_epoch_end=None) -> dict:
  """Trains (resuming from the workdir's latest checkpoint), then tests the best state;
  holds the workdir's lock throughout, so a second run on it is refused.

  Every check that can run before training does, before anything is written or moved:
  the data (train, val and test splits there, whole and big enough for the batch), the
  state's and an evaluation batch's memory, so a
  workdir holds config.json only once a run really started, and the corrected command
  is not refused as a run of a different config; --fresh moves the old run aside only
  then. on_epoch_end(record, state): the Python hook of digitjax.fit."""
  t_start = time.time()
  workdir_lib.refuse_if_busy(workdir)
  if not fresh:
    workdir_lib.check_config(config, workdir)  # refused at once, not after reading data
  train, val = data.load_train_val(config)
  steps_per_epoch = _steps_per_epoch(config, len(train))
  check_state_fits(config, steps_per_epoch)
  trainer = Trainer(config, steps_per_epoch)
  initial = trainer.init_state()
  check_eval_batch(trainer, initial, train if val is None else val)
  if fresh and (aside := workdir_lib.set_aside(workdir)):
    print(f"Moved the previous run to {aside}.")
  workdir_lib.create(workdir)
  with workdir_lib.lock(workdir):
    workdir_lib.record_config(config, workdir)
    return _train_and_evaluate(trainer, workdir, train, val, initial, t_start, on_epoch_end)


def _train_and_evaluate(trainer: Trainer, workdir: str, train: data.Split,
                        val: data.Split | None, initial, t_start: float,
                        on_epoch_end=None) -> dict:
  """The epoch loop; with no val split (validation_fraction 0) nothing is validated,
  the records carry no val_loss / val_accuracy, and every epoch is the best so far."""
  config = trainer.config
  totals = _print_summary(trainer, workdir)
  saves = Saves(workdir, trainer)
  restored = saves.restore()
  if restored is None:
    state, loop = initial, LoopState.fresh(trainer.num_replicas)
  else:
    state, loop = restored
    print(f"Resuming from {workdir}: epoch {loop.epoch}, step {step_of(state)}.")
  earlier = loop.train_seconds  # trained by the processes this one resumes
  train_data = TrainData(trainer, train)
  _say_where(train_data, config)
  tb = (reporting.TensorBoard(workdir, config, loop.epoch) if distributed.is_main_process()
        else None)
  try:
    with ctrl_c.StopSignals() as signals:
      run = _Run(trainer, train_data, saves, signals, workdir)
      while loop.epoch < config.num_epochs and any(loop.active):
        epoch, clock = loop.epoch + 1, Clock()
        state, sums = train_epoch(run, state, loop, epoch, clock)
        if sums is None:
          return _interrupted(signals.received, state, saves, workdir)
        val_metrics = None if val is None else trainer.evaluate(state, val)[0]
        lrs = trainer.learning_rates(state)
        state = callbacks.reduce_lr_on_plateau(trainer, state, val_metrics)
        clock.lap(loop, sums)
        records = callbacks.epoch_records(trainer, loop, epoch, sums, val_metrics, lrs)
        loop.history.extend(records)
        loop.epoch, loop.step_in_epoch, loop.partial = epoch, 0, None
        improved = callbacks.early_stopping(trainer, loop, records)
        print_epoch(config, records)
        callbacks.check_skipped(records, trainer.steps_per_epoch, workdir,
                                trainer.num_replicas > 1)
        saves.new_best(state, improved)
        if (epoch % config.checkpoint_every_epochs == 0 or epoch == config.num_epochs
            or not any(loop.active)):
          saves.save(state, loop)
        log_epoch(config, workdir, loop, records, tb)
        for record in records if on_epoch_end and distributed.is_main_process() else ():
          on_epoch_end(dict(record), state)  # the user's hook (digitjax.fit)
      if signals.received:  # during the last validation: saved above; test on rerun
        return _interrupted(signals.received, state, saves, workdir)
    results = evaluate.final_test(trainer, state, loop, saves.ckpts, workdir)
    # the run's wall time: this process's, and the training of those it resumed
    results.update(params=totals, wall_seconds=time.time() - t_start + earlier)
    _write_results(trainer, loop, results, workdir, tb)
  finally:
    if tb:
      tb.close()
  saves.ckpts.close()
  return results
