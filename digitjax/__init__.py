"""digitjax: re-run, study and extend classic Keras image-classification reports in JAX."""
import os

# TensorFlow only reads data here: its C++ warnings (a damaged record's "Local rendezvous
# is aborting ...") would print before digitjax's own one-line message. Errors still
# show; set TF_CPP_MIN_LOG_LEVEL=0 to see everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load(path, which="best", seed=None):
  """A trained model (digitjax.inference.Model) from a workdir or an exported file."""
  from digitjax import inference  # imports JAX: only when used
  return inference.load(path, which=which, seed=seed)


def load_config(spec: str):
  """The config `--config=SPEC` gives: 'configs/cnn_bn.py' or 'configs/report_a.py:a1_perceptron'
  (a file and its variant). Change its fields, then fit(config, workdir)."""
  from digitjax import config_files
  path, *variant = spec.split(":", 1)
  return config_files.from_file(path, *variant)


def fit(config, workdir: str, fresh: bool = False, on_epoch_end=None) -> dict:
  """Trains config into workdir (resuming it if it holds this run) and tests the best
  checkpoint, as `python -m digitjax.main` does; returns what results.json holds.

  on_epoch_end(record, state), if given, runs after each epoch's checkpoint and logs, once
  per seed still training: `record` is the epoch's metrics.jsonl line (epoch, seed, loss,
  accuracy, val_loss, val_accuracy, lr, time), `state` the TrainState of every seed
  (leading seed axis; read it, do not keep it past the call). Raising stops the run, with
  the epoch's checkpoint already saved.
  """
  from digitjax import main
  return main.run(config, workdir, fresh=fresh, on_epoch_end=on_epoch_end)
