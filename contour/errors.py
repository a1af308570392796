"""Errors that the ``contour`` command reports as one clear line (what is wrong, how to fix)."""


class ContourError(Exception):
    """A failure the user can act on; ``str()`` is the one line shown to them."""

    exit_code = 1


class ConfigError(ContourError):
    """A wrong configuration value (environment variable, state folder)."""

    exit_code = 2


class ServiceError(ContourError):
    """A service could not be started, reached or stopped."""

    exit_code = 3
