"""notifier: a deadline notification daemon."""

__version__ = "0.1.0"
