"""The one exception type a user is meant to read.

Anything raised as `UserError` is printed by `digitjax.main` as a single line on stderr,
without a traceback, and the process exits non-zero. Raise it wherever the fix lies with
the user (config, data, workdir); let genuine bugs keep their tracebacks.
"""


class UserError(Exception):
  """A problem the user can fix; the message says what was wrong and what to do."""


class NonFiniteLoss(UserError):
  """Training met a NaN or infinite loss or gradient (config.on_nonfinite says what then)."""
