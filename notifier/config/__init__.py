"""Stage 1, the config: the TOML file, `NOTIFIER_*` variables and credentials into a `Config`.

Read, validated against the schema, resolved (zones, offsets, dues); every
problem located in its file or variable, and nothing applied until all is good.
"""
