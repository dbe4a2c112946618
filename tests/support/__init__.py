"""What the tests share, one job a module.

env: the daemon's environment, cleaned. times: clock helpers and units.
configs: config files and deadline tables. schedules: random year-long schedules.
jsonl: reading a jsonl:// channel's file. waits: waiting for a named event.
ledger: reading the ledger from outside. processes: `python -m notifier` in a
subprocess and its NOTIFY_SOCKET. threads: the real Daemon on a thread.
senders: channel senders for an in-process dispatcher. receivers: real HTTP and
SMTP servers. figures: measured figures printed and recorded.
"""
