"""Entry point: `python -m digitjax.main --config=configs/cnn_bn.py [--workdir=DIR]`.

Short, as in Flax's examples: flags in, one call into digitjax.train out (the --config
flag's own mistakes are read in digitjax.config_flag).
Any config field can be overridden, e.g. `--config.optimizer.learning_rate=3e-4`.
Rerunning on the same workdir resumes; `--mode=eval` tests the best checkpoint
(`--eval_split='test[:50%]'`, `--eval_dataset=...`: another split or dataset, printed only);
`--mode=predict --workdir=DIR --images=a.png,folder/,x.npy` prints each image's class
(`--top`, `--format`, `--resize`, `--invert`: digitjax.predict); `--mode=export
--export_to=PATH` writes a model that runs without digitjax (digitjax.export);
`--mode=summary` prints what a command would train, and trains and writes nothing.
Problems the user can fix print one line on stderr and exit with status 2.
"""
from __future__ import annotations

import errno
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from digitjax import ctrl_c
from digitjax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/cnn_bn.py, or FILE:VARIANT for "
    "the files that hold several (configs/report_a.py:a2_mlp1); --mode=summary lists a "
    "file's variants.", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Where checkpoints, metrics and plots go. Default: runs/<config name>.")
_MODE = flags.DEFINE_enum(
    "mode", "train", ["train", "eval", "predict", "export", "summary"],
    "train (resumes if the workdir has a checkpoint), eval (tests the best checkpoint), "
    "predict (classifies --images), export (writes --export_to) or summary (prints the "
    "config file's variants, the resolved config, the model and the workdir; writes "
    "nothing).")
_IMAGES = flags.DEFINE_string(
    "images", None, "--mode=predict: comma-separated PNG/JPEG files, folders of them, or "
    ".npy arrays of images (uint8 0-255 or float 0-1).")
_RESIZE = flags.DEFINE_bool("resize", False, "--mode=predict: stretch images of another "
                            "size to the model's input height and width.")
_INVERT = flags.DEFINE_bool("invert", False, "--mode=predict: invert the images first "
                            "(dark ink on light paper -> MNIST's light on black).")
_TOP = flags.DEFINE_integer("top", 1, "--mode=predict: print each image's K most "
                            "probable classes with their probabilities.")
_FORMAT = flags.DEFINE_enum("format", "text", ["text", "json", "csv"],
                            "--mode=predict: output as tab-separated text, JSON or CSV.")
_EXPORT_TO = flags.DEFINE_string(
    "export_to", None, "--mode=export: the file (jax, msgpack) or new folder (savedmodel) "
    "to write.")
_EXPORT_FORMAT = flags.DEFINE_enum(
    "export_format", "jax", ["jax", "savedmodel", "msgpack"],
    "--mode=export: jax (a jax.export program and its weights, one .npz: runs with jax "
    "alone), savedmodel (TensorFlow, via jax2tf) or msgpack (params for digitjax.load).")
_EVAL_SPLIT = flags.DEFINE_string(
    "eval_split", None, "--mode=eval on this split instead of the config's test split, "
    "e.g. 'test[:50%]'; prints only, writes nothing in the workdir.")
_EVAL_DATASET = flags.DEFINE_string(
    "eval_dataset", None, "--mode=eval on another dataset with images of the same shape "
    "and as many classes (e.g. fashion_mnist for an MNIST run); prints only.")
_FRESH = flags.DEFINE_bool("fresh", False, "Set an existing workdir aside (renamed with a "
                           "timestamp, never deleted) and start from scratch.")


def _validate(config) -> None:
  from digitjax import validation

  errors = validation.validate(config)
  if errors:
    raise UserError("invalid config:\n  " + "\n  ".join(errors))


def run(config, workdir: str, mode: str = "train", fresh: bool = False,
        eval_split: str | None = None, eval_dataset: str | None = None,
        on_epoch_end=None) -> dict:
  """One run (train, resuming, or eval). Ctrl-C anywhere in it stops it with
  KeyboardInterrupt, never swallowed by a gc callback (digitjax.ctrl_c); training
  answers the first one by saving a checkpoint instead. on_epoch_end: digitjax.fit's."""
  with ctrl_c.guard():
    return _run(config, workdir, mode, fresh, eval_split, eval_dataset, on_epoch_end)


def _run(config, workdir, mode, fresh, eval_split, eval_dataset, on_epoch_end) -> dict:
  _validate(config)
  if fresh and mode != "train":
    raise UserError(f"--fresh goes with --mode=train only: --mode={mode} never moves a run "
                    f"aside. Drop --fresh to evaluate the run in {workdir}.")
  from digitjax import data, models  # imports JAX: after the cheap checks
  from digitjax import workdir as workdir_lib
  workdir_lib.check_path(workdir)
  info = data.DATASETS[config.dataset.name]
  models.check_input(config, data.image_shape(config), info.num_classes)
  from digitjax import evaluate, train
  try:
    if mode == "eval" and (eval_split or eval_dataset):
      return evaluate.evaluate_on(config, workdir, eval_split, eval_dataset)
    if mode == "eval":
      return evaluate.evaluate_checkpoint(config, workdir)
    return train.train_and_evaluate(config, workdir, fresh=fresh, on_epoch_end=on_epoch_end)
  except OSError as e:  # here, so the reproduce and sweep runners report it too
    if e.errno not in _NO_ROOM:
      raise
    raise UserError(f"could not write in {workdir} ({e.strerror}). What it held before is "
                    "intact: free disk space and rerun the same command to resume.") from e


def parse_flags(argv):
  """absl's flag parsing, with config mistakes as one line instead of a traceback: a
  --config file that is missing or fails, an override of a field that does not exist or
  of the wrong type (digitjax.config_flag) print which argument was wrong and exit 2."""
  from digitjax import config_flag

  try:
    config_flag.preload(argv)
    return flags.FLAGS(argv)
  except UserError as e:  # the file's own mistakes, e.g. an unknown variant
    _usage_error(str(e))
  except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as e:
    _usage_error(config_flag.override_message(argv, e))


# a full disk or quota, a file over the size limit, a read-only mount: the environment's
# fault, not a bug, so one line rather than a traceback
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def check_args(argv):
  """Parses and validates a command line without running it; exit 2 with one message if
  it is wrong. launch.sh calls it before it queues a SLURM job or starts N processes, so
  a mistake shows here and once, not on every process or after the queue."""
  parse_flags(argv)
  _check_mode_flags(_CONFIG.value, _MODE.value)
  if _CONFIG.value is None:  # eval or predict of a workdir: its own config.json
    return
  try:
    _validate(_CONFIG.value)
  except UserError as e:
    _usage_error(str(e))


def _exit_now(status: int) -> None:
  """Exits at once, skipping Python's shutdown: after a Ctrl-C in start-up or eval,
  TensorFlow's and XLA's threads may still be mid-read or mid-compile, and finalizing
  the interpreter under them sometimes segfaulted (exit -11 after the message). Nothing
  is left to write: checkpoints are written whole or not at all."""
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)


def _default_workdir(config) -> str:
  """runs/<config.name>; UserError for a name that would not be a folder of its own
  there: empty or blank (the run would train into runs/ itself, and --fresh move all of
  runs/ aside), '.', '..', an empty part or one with a leading /."""
  name = config.name
  parts = name.split("/")
  if not name.strip() or name.startswith("/") or any(
      p.strip() in ("", ".", "..") for p in parts):
    raise UserError(f"config.name={name!r} cannot name a run's folder under runs/ (it is "
                    "empty, blank or has a '.', '..' or empty part); set --config.name=NAME "
                    "(e.g. my_run, report_a/a1) or give --workdir.")
  return os.path.join("runs", name)


def _usage_error(message: str):
  """A command line that cannot run: one line on stderr and exit 2, as every fault the
  user can fix (absl's UsageError would print the whole flag help and exit 1)."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _workdir(config) -> str:
  """--workdir as given, with a leading ~ expanded (the shell leaves `--workdir=~/x`
  alone), or runs/<config name>; an empty --workdir= is a mistake, not the default."""
  if _WORKDIR.present and not (_WORKDIR.value or "").strip():
    raise UserError("--workdir is empty: give a folder (--workdir=runs/mine), or leave "
                    "--workdir out to use runs/<config name>.")
  if _WORKDIR.value:
    return os.path.expanduser(_WORKDIR.value)
  return _default_workdir(config)


def main(argv):
  if len(argv) > 1:
    _usage_error(f"unexpected argument(s) {' '.join(argv[1:])}: flags are --name=value, "
                 "e.g. --config=configs/cnn_bn.py --config.seed=1.")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS are chatty at INFO
  config, mode = _CONFIG.value, _MODE.value
  _check_mode_flags(config, mode)
  workdir = _WORKDIR.value or "runs"  # for the Ctrl-C message, until it is known
  try:
    workdir = _workdir(config)
    with ctrl_c.guard():  # from here on, a stop is never swallowed
      if mode in ("predict", "export"):
        _use_trained(workdir, mode)
        return
      if config is None:  # eval of a workdir alone: the config its training recorded
        from digitjax import inference
        config = inference.recorded_config(workdir)
      if mode == "summary":
        _summary(config, workdir)
        return
      from digitjax import distributed, provenance
      provenance.note_command(sys.argv)
      distributed.initialize_from_env()  # several processes (launch.sh --processes, --slurm)
      result = run(config, workdir, mode, _FRESH.value, _EVAL_SPLIT.value,
                   _EVAL_DATASET.value)
  except UserError as e:
    _usage_error(str(e))
  except KeyboardInterrupt:  # a stop while starting up or in the final test (training
    # answers one by saving a checkpoint), or a second Ctrl-C: checkpoints are written
    # whole or not at all. Ctrl-C exits 130; SIGTERM and SIGHUP ask for a clean stop: 0
    name = ctrl_c.last_signal or "SIGINT"
    print(f"Stopped by {'Ctrl-C' if name == 'SIGINT' else name}. What {workdir} already "
          "held is intact; rerun the same command to resume.", file=sys.stderr)
    _exit_now(130 if name == "SIGINT" else 0)
  if result.get("interrupted"):
    sys.exit(0)


def _check_mode_flags(config, mode: str) -> None:
  """The flags each mode needs and takes, before anything is read: exit 2 otherwise."""
  if _FRESH.value and mode != "train":  # run() says so too; predict does not call it
    _usage_error(f"--fresh goes with --mode=train only: --mode={mode} never moves a run "
                 "aside. Drop --fresh.")
  if mode == "predict" and not _IMAGES.value:
    _usage_error("--mode=predict needs --images=PATH[,PATH...] (PNG/JPEG files, folders "
                 "of them, .npy arrays) and --workdir (or --config, for runs/<config name>).")
  if config is None and not (mode != "train" and _WORKDIR.value):
    _usage_error("--config is required, e.g. --config=configs/cnn_bn.py (--mode=eval, "
                 "predict, export and summary take --workdir alone: the config its "
                 "training recorded).")
  if (_EVAL_SPLIT.present or _EVAL_DATASET.present) and mode != "eval":
    _usage_error("--eval_split and --eval_dataset go with --mode=eval; add --mode=eval to "
                 "test a trained run on another split or dataset.")
  if mode == "export" and not (_EXPORT_TO.value or "").strip():
    _usage_error("--mode=export needs --export_to=PATH (e.g. model.npz; a new folder for "
                 "--export_format=savedmodel) and --workdir (or --config).")
  for mine, names in (("predict", ("resize", "invert", "top", "format")),
                      ("export", ("export_to", "export_format"))):
    given = [f"--{n}" for n in names if flags.FLAGS[n].present]
    if given and mode != mine:
      _usage_error(f"{' and '.join(given)} go{'es' if len(given) == 1 else ''} with "
                   f"--mode={mine}, not --mode={mode}.")
  if _TOP.value < 1:
    _usage_error(f"--top={_TOP.value}: give how many classes to print, 1 or more.")


def _use_trained(workdir: str, mode: str) -> None:
  """--mode=predict or --mode=export: a trained run (a workdir or an exported .msgpack)."""
  if mode == "predict":
    from digitjax import predict
    predict.predict(workdir, _IMAGES.value, _TOP.value, _FORMAT.value, _RESIZE.value,
                    _INVERT.value)
    return
  from digitjax import export
  path = export.export(workdir, os.path.expanduser(_EXPORT_TO.value), _EXPORT_FORMAT.value)
  print(f"Wrote {path} ({_EXPORT_FORMAT.value} export of {workdir}).")


def _summary(config, workdir: str) -> None:
  """--mode=summary: the config file's variants, resolved config, model and workdir;
  validated as training would validate them, nothing written (digitjax.overview)."""
  from digitjax import overview

  _validate(config)
  spec = flags.FLAGS["config"].config_filename if _CONFIG.value is not None else None
  overview.show(config, workdir, spec)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
