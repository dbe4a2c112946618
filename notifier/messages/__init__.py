"""Stage 3, the words: a planned notification rendered into a title and a body.

Sandboxed Jinja2 templates, built-in defaults per kind plus the config's
overrides. Pure: the instant a message is written at is passed in.
"""
