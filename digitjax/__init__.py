"""digitjax: re-run, study and extend classic Keras image-classification reports in JAX."""
