"""Keras itself, beside digitjax: does Keras meet a published figure where digitjax misses?

  check.py      python -m experiments.keras.check --row B3 --seeds 3: a row trained in
                Keras 3 on digitjax's splits
  notebooks.py  python -m experiments.keras.notebooks E5-sgd: the authors' Keras run of a
                report E row (their notebook's log), epoch by epoch, beside our seeds'
  models.py     python -m experiments.keras.models: report E's networks as the report and
                the authors' notebooks built them in Keras (tests/test_keras_equivalence.py)

Nothing here imports Keras until a command or test asks for it.
"""
