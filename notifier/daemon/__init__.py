"""The shell that runs the stages for `notifier run`: clock, timer, signals, reload, systemd."""
