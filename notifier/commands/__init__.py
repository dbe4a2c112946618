"""One module per CLI command: plain arguments in, a `common.Result` out, typed errors raised.

Nothing here knows click; `notifier.cli` parses, calls, prints and exits.
"""
