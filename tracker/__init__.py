"""The application shell: CLI, configuration, engine set-up and the scheduler daemon."""

__version__ = "0.1.0"

__all__ = ["__version__"]
