"""digitjax: re-run, study and extend classic Keras image-classification reports in JAX."""


def load(path, which="best", seed=None):
  """A trained model (digitjax.inference.Model) from a workdir or an exported file."""
  from digitjax import inference  # imports JAX: only when used
  return inference.load(path, which=which, seed=seed)
