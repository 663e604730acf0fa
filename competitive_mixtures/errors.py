"""Errors that end a run with one line on stderr instead of a traceback.

`cli.run` turns a `UserError` into `error: <message>` and its `exit_code`
(2: bad input, a missing dataset or run, a busy or unusable workdir; 3: the
training diverged). Every such error names what is wrong and what to do.
"""


class UserError(Exception):
    """A problem the user can fix: bad input, a missing file, an unusable workdir."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A config field holds a value the run cannot use."""


class DataError(UserError, ValueError):
    """The data cannot be used as given (shape, values, files); the message names the fix."""


class WorkdirError(UserError):
    """The workdir cannot be used: empty path, a file, not writable, or held by another run."""


class CheckpointError(UserError):
    """No checkpoint of the workdir can be restored."""


class DivergenceError(UserError):
    """Training diverged past the divergence policy; the last good checkpoint stays."""

    exit_code = 3
