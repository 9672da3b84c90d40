"""Root exceptions for the appliance.

Each also inherits the matching builtin (as gpiozero's ``exc.py`` does), so callers that only
know ``ValueError`` or ``OSError`` still catch them. Messages say what was wrong, where, what is
allowed, and the next step.
"""


class BreatheError(Exception):
    """Root of every error the appliance raises on purpose."""


class BadInput(BreatheError, ValueError):
    """Input from a person or a file was invalid (CLI exit code 2)."""


class ConfigError(BadInput):
    """The configuration file or an override was invalid."""


class SourceError(BreatheError, OSError):
    """A frame source could not be opened or stopped delivering frames."""


class NotYetAvailable(BreatheError, NotImplementedError):
    """A command whose feature arrives with a later issue (CLI exit code 1)."""


class MissingExtra(BadInput):
    """A feature needs an optional dependency that this install does not have (exit code 2)."""


def require_extra(module: str, extra: str, feature: str) -> None:
    """Raise MissingExtra unless ``module`` can be imported; say which extra installs it."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtra(
            f"{feature} needs the {module} package, which this install does not have; install "
            f"the {extra!r} extra: pip install 'breathe[{extra}]' (from the project checkout, in "
            "the same venv)"
        )
