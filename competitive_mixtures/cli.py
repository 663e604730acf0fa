"""What the command-line tools share: one-line errors and quiet shutdown.

`run(main)` replaces `absl.app.run(main)`. A `UserError` (bad flag or config
value, missing file or dataset, unusable workdir, divergence) ends the
process with `error: <message>` on stderr and the error's exit code (2, or
3 for divergence); `--verbose` shows the traceback instead.
"""

from __future__ import annotations

import logging as std_logging
import os
import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging

from competitive_mixtures import errors

_VERBOSE = flags.DEFINE_bool("verbose", False,
                             "Show the traceback of an error instead of one line.")

# Exit code of a flag that cannot be parsed (as for every other user error).
USAGE_EXIT_CODE = 2


def fail(message: str, exit_code: int = USAGE_EXIT_CODE):
    """Ends the process with one line on stderr."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    sys.exit(exit_code)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with one line for a bad flag, config file or override."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        # A config file that raised a UserError (its data cannot be used): that line alone.
        # config_flags raises a copy carrying the traceback; the first one is the deepest.
        cause, user_error = error, None
        while cause is not None:
            if isinstance(cause, errors.UserError):
                user_error = cause
            cause = cause.__cause__ or cause.__context__
        if user_error is not None:
            fail(str(user_error), user_error.exit_code)
        fail(f"{error} (--helpshort lists the flags)")
    except (AttributeError, KeyError) as error:
        # config_flags applies --config.FIELD=VALUE overrides while parsing.
        overrides = [arg.split("=")[0] for arg in argv[1:] if arg.startswith("--config.")]
        field = str(error).strip("\"'")
        fail(f"the config has no field {field!r} (overrides given: {', '.join(overrides)}); "
             "competitive_mixtures/config/fields.py lists every field")
    except (OSError, ValueError, TypeError) as error:
        # A config file that is missing or raises on its argument.
        fail(f"{type(error).__name__}: {error}")


def loaded_config(holder):
    """The value of a `config_flags` flag, or one line saying why its file did not load.

    `config_flags` reports a missing or failing config file only when the
    value is first used, as a multi-line OSError.
    """
    config = holder.value
    try:
        config.get("seed")
    except OSError as error:
        fail(" ".join(part.strip() for part in str(error).splitlines() if part.strip()))
    return config


def _quiet_orbax(record: std_logging.LogRecord) -> bool:
    """Keeps orbax's per-save INFO lines out of the run's log."""
    return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname


def run(main: Callable[[list[str]], None]) -> None:
    """`app.run(main)` with one-line user errors (see the module doc)."""

    def wrapped(argv: list[str]) -> None:
        logging.get_absl_handler().addFilter(_quiet_orbax)
        try:
            main(argv)
        except errors.UserError as error:
            if _VERBOSE.value:
                raise
            logging.flush()
            sys.stdout.flush()
            sys.stderr.write(f"error: {error}\n")
            sys.stderr.flush()
            # Skip the interpreter's teardown: background threads of the
            # checkpoint library would print errors about a closed event loop.
            os._exit(error.exit_code)
        sys.stdout.flush()
        sys.stderr.flush()

    app.run(wrapped, flags_parser=parse_flags)
