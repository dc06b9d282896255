"""Experiments built on digitjax, by purpose: reproduce/ (the reports' rows), sweep/,
perf/ (speed), keras/ (Keras itself), and a few tools here; experiments/README.md lists
every command and the question it answers."""
import argparse


def whole(minimum: int):
  """An argparse type for a whole number >= minimum (type=whole(1) for a count), so a
  wrong value is a usage error naming the flag rather than a traceback mid-run."""

  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
      raise argparse.ArgumentTypeError(f"{value} is below the minimum, {minimum}")
    return value

  return parse
