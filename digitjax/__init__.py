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
