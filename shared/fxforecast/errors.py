"""Errors a user can act on: each message is one line naming the problem and the fix."""


class FxError(Exception):
    """Base class: shown to the user as a single line, without a traceback."""

    exit_code = 1


class ConfigError(FxError):
    """A setting in a .env file, the environment or on the command line is invalid."""

    exit_code = 2


class DataError(FxError):
    """The market data cannot be used as given."""

    exit_code = 3
