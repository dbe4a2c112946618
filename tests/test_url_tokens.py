"""A key in a webhook's path or an ntfy topic is shown as ``***`` (README, "Secrets").

apprise's privacy form shows a json/xml/form path and an ntfy topic in clear, but a
Slack-style webhook's last segment or a long ntfy topic is the channel's only key:
`notifier run`'s start line, `send-test`, and a log line quoting the raw URL mask it,
while the host, the rest of the path and a short topic stay shown.
"""

from __future__ import annotations

from pathlib import Path

from support.configs import toml_str, write_config
from support.processes import daemon_process, run_notifier, wait_ready
from support.receivers import unused_port

WEBHOOK_KEY = "XcanaryWebhookKey0a1b2c3d"
TOPIC_KEY = "alerts_CanaryTopic7f3e9d1c"


def urls(port: int) -> tuple[str, str]:
    return (f"json://127.0.0.1:{port}/services/T0AAAAAAA/B0BBBBBBB/{WEBHOOK_KEY}",
            f"ntfy://127.0.0.1:{port}/{TOPIC_KEY}/ops")


def config(tmp: Path, port: int, *, mode: int = 0o600) -> Path:
    hook, topic = urls(port)
    return write_config(tmp / "config.toml", (
        f'[notifier]\nstate = {toml_str(str(tmp / "ledger.db"))}\nlog_level = "DEBUG"\n\n'
        '[defaults]\ntimezone = "UTC"\nreminders = []\n\n'
        f"[channels.hook]\nurl = {toml_str(hook)}\n\n"
        f"[channels.topic]\nurl = {toml_str(topic)}\n\n"
        '[[deadlines]]\nid = "x"\ntitle = "Handover"\ndue = 2030-01-10T12:00:00Z\n'), mode)


def test_run_and_send_test_show_a_path_key_and_a_topic_key_masked(tmp_path: Path) -> None:
    port = unused_port()  # nothing listens: every send is refused
    path = config(tmp_path, port)
    sent = {name: run_notifier("send-test", name, "-c", str(path)) for name in ("hook", "topic")}
    with daemon_process(tmp_path, path.read_text("utf-8")) as (daemon, _):
        wait_ready(daemon)
    log = daemon.text()
    start = next(line for line in log.splitlines() if "json://" in line)
    assert f"json://127.0.0.1:{port}/services/T0AAAAAAA/B0BBBBBBB/***" in start, log
    assert f"ntfy://127.0.0.1:{port}/***/ops" in log, log
    hook_out = sent["hook"].stdout + sent["hook"].stderr
    topic_out = sent["topic"].stdout + sent["topic"].stderr
    assert sent["hook"].returncode == 1, hook_out
    assert f"FAILED json://127.0.0.1:{port}/services/T0AAAAAAA/B0BBBBBBB/***" in hook_out
    assert f"FAILED ntfy://127.0.0.1:{port}/***/ops" in topic_out, topic_out
    for where, text in (("log", log), ("send-test hook", hook_out),
                        ("send-test topic", topic_out)):
        assert WEBHOOK_KEY not in text, (where, text)
        assert TOPIC_KEY not in text, (where, text)


def test_a_file_readable_by_others_with_a_path_key_is_warned_about(tmp_path: Path) -> None:
    port = unused_port()
    done = run_notifier("check", "-c", str(config(tmp_path, port, mode=0o644)))
    assert done.returncode == 0, done.stderr
    assert (f"json://127.0.0.1:{port}/services/T0AAAAAAA/B0BBBBBBB/*** holds a secret and"
            " this file is readable by others") in done.stderr, done.stderr
    assert WEBHOOK_KEY not in done.stdout + done.stderr
