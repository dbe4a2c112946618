"""What `notifier check` says of a bad file, as a new operator reads it (issue 22): each
problem at its value's line and column, in the file's order, with the closest name that
exists, and third parties' words (TOML readers, apprise, Jinja) in the product's."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.checking import check_text
from support.env import clean_env

README = Path(__file__).resolve().parent.parent / "README.md"

HEAD = """\
[defaults]
timezone = "Asia/Baku"

[channels.console]
url = "console://"
"""

DEADLINE = """
[[deadlines]]
id = "kalbajar"
title = "Kalbajar handover"
due = 2020-11-15
"""
"""HEAD + DEADLINE: the deadline's table is at line 7, its `id` at 8, `due` at 10."""

NOT_A_DATE = ("not a real date or time: months 01-12, days as the month has them, hours 00-23, "
              "minutes and seconds 00-59")
KINDS = ("'reminder', 'rescheduled', 'due', 'overdue', 'completed', 'cancelled', 'digest', "
         "'summary' or 'test'")




# (name, file, where `FILE:LINE:COL: path`, the message after the path): a value's problem
# is at the column where the value starts, whatever its form and on whichever line it is.
AT_THE_VALUE = [
    ("a string", HEAD + DEADLINE.replace('"kalbajar"', '"Kalbajar!"'), "8:6: deadlines.0.id",
     "must be lowercase letters, digits, - and _, starting with a letter or digit (at most 64)"),
    ("a number", HEAD + DEADLINE + "overdue_every = \"1d\"\noverdue_limit = 1.5\n",
     "12:17: deadlines.0.overdue_limit", "must be a whole number"),
    ("a zone of [defaults]", HEAD.replace("Asia/Baku", "Mars/Olympus") + DEADLINE,
     "2:12: defaults.timezone", "unknown time zone (use an IANA name such as Asia/Baku)"),
    ("a URL", HEAD + "[channels.x]\nurl = \"jsonl://out.jsonl\"\n" + DEADLINE,
     "7:7: channels.x.url", "jsonl:// needs an absolute file path: "
     "jsonl:///var/lib/notifier/out.jsonl"),
    ("a list element in an inline table", HEAD + "[channels]\n"
     "x = { url = \"console://\", kinds = [\"due\", \"overdue\", \"dues\"] }\n" + DEADLINE,
     "7:54: channels.x.kinds.2", "must be one of 'reminder', 'rescheduled', 'due', 'overdue', "
     "'completed', 'cancelled' or 'digest'; did you mean 'due'?"),
    ("a value in an inline table", "deadlines = [\n  { id = \"d\", title = \"T\", "
     "due = 2020-11-15, timezone = \"Mars/Olympus\" },\n]\n" + HEAD, "2:57: deadlines.0.timezone",
     "unknown time zone (use an IANA name such as Asia/Baku)"),
    ("an element on a later line", HEAD + DEADLINE + "reminders = [\n  \"1d\",\n  \"3 days\",\n]\n",
     "13:3: deadlines.0.reminders.1", "not an offset"),
    ("after a multi-line string", HEAD + DEADLINE + "notes = \"\"\"\nx = 1\n\"\"\"\n"
     "overdue_limit = 1.5\n", "14:17: deadlines.0.overdue_limit", "must be a whole number"),
]


@pytest.mark.parametrize(("name", "text", "where", "message"), AT_THE_VALUE,
                         ids=[c[0] for c in AT_THE_VALUE])
def test_a_problem_with_a_value_is_at_the_value(
        tmp_path: Path, name: str, text: str, where: str, message: str) -> None:
    status, lines, path = check_text(tmp_path, text)
    assert status == 78, lines
    said = [ln for ln in lines if ln.startswith(f"{path}:{where}: ")]
    assert len(said) == 1, lines
    assert said[0].removeprefix(f"{path}:{where}: ").startswith(message), lines


def test_problems_are_in_the_files_order_and_variables_last(tmp_path: Path) -> None:
    """pydantic reports by field order, the resolver by stage: the operator reads by line."""
    shape = ("[templates.due]\ntitle = 3\n" + HEAD + DEADLINE.replace('"kalbajar"', '"K!"')
             + "overdue_limit = \"x\"\n[digest]\nalways = 1\n")
    status, lines, _ = check_text(tmp_path, shape)
    assert status == 78
    # `always = 1` too: a TOML integer is not true or false.
    assert [int(ln.split(":")[1]) for ln in lines] == [2, 10, 13, 14, 15], lines
    meaning = (HEAD + '[[deadlines]]\nid = "a"\ntitle = "A"\ndue = 2020-11-15\n'
               'timezone = "Nowhere/Land"\nchannels = ["pager"]\n')
    status, lines, path = check_text(tmp_path, meaning,
                                    NOTIFIER_DEFAULTS__TIMEZONE="Mars/Olympus")
    assert status == 78
    assert [ln.split(": ")[0] for ln in lines] == [
        f"{path}:10:12", f"{path}:11:13", "NOTIFIER_DEFAULTS__TIMEZONE"], lines


# (name, file, `LINE:COL: path: message` as printed)
WORDED = [
    ("duplicate id", HEAD + DEADLINE + DEADLINE,
     "13:6: deadlines.1.id: duplicate id 'kalbajar' (first at line 8)"),
    ("unknown channel", HEAD + DEADLINE + 'channels = ["consle"]\n',
     "11:13: deadlines.0.channels.0: unknown channel 'consle' (not in [channels]; did you mean "
     "'console'?)"),
    ("unknown template kind", HEAD + "[templates.remind]\ntitle = \"x\"\n" + DEADLINE,
     f"6:1: templates.remind: unknown name; must be one of {KINDS}; did you mean 'reminder'?"),
    ("zone in the wrong case", HEAD + DEADLINE + 'timezone = "europe/berlin"\n',
     "11:12: deadlines.0.timezone: unknown time zone; did you mean 'Europe/Berlin'?"),
    ("misspelt zone", HEAD.replace("Asia/Baku", "Asia/Bakuu") + DEADLINE,
     "2:12: defaults.timezone: unknown time zone; did you mean 'Asia/Baku'?"),
    ("misspelt scheme", HEAD + "[channels.mail]\nurl = \"mailtto://ops@example.org\"\n" + DEADLINE,
     "7:7: channels.mail.url: unknown scheme mailtto:// (did you mean mailto://?)"),
    ("a web URL", HEAD + "[channels.hook]\nurl = \"https://hooks.example.org/x\"\n" + DEADLINE,
     "7:7: channels.hook.url: unknown scheme https://: for a webhook write jsons:// (a JSON "
     "POST; also xml://, form://), or the service's own apprise scheme"),
    ("e-mail without a sender", HEAD + "[channels.mail]\nurl = \"mailto://example.org?to=x\"\n"
     + DEADLINE, "7:7: channels.mail.url: E-Mail rejected the URL: no valid sender address: "
     "add from=NAME@DOMAIN, or a user and host that make one"),
    ("unterminated string", HEAD.replace('"Asia/Baku"', '"Asia/Baku'),
     '2:12: TOML syntax: unterminated string: its closing quote is missing on this line (text '
     'over several lines goes in """...""")'),
    ("unterminated literal string", HEAD.replace('"Asia/Baku"', "'Asia/Baku"),
     '2:12: TOML syntax: unterminated string: its closing quote is missing on this line (text '
     'over several lines goes in """...""")'),
    ("table defined twice", HEAD + "\n[channels.console]\nurl = \"console://\"\n",
     "7:1: TOML syntax: table [channels.console] is defined twice"),
    ("key set twice", HEAD + "url = \"console://\"\n",
     "6:1: TOML syntax: this key is already set above (each key and table is written once)"),
    ("month 13", HEAD + DEADLINE.replace("2020-11-15", "2020-13-45"),
     "10:7: TOML syntax: " + NOT_A_DATE),
    ("29 February of a common year", HEAD + DEADLINE.replace("2020-11-15", "2021-02-29T10:00:00"),
     "10:7: TOML syntax: " + NOT_A_DATE),
    ("hour 24", HEAD + DEADLINE.replace("2020-11-15", "2020-11-15T24:00:00+04:00"),
     "10:7: TOML syntax: " + NOT_A_DATE),
    ("impossible date in an unterminated string", HEAD.replace('"Asia/Baku"', '"Baku 2020-13-45'),
     '2:12: TOML syntax: unterminated string: its closing quote is missing on this line (text '
     'over several lines goes in """...""")'),
    ("bare word for a value", HEAD + DEADLINE + "note = handed over\n",
     '11:8: TOML syntax: not a value: text needs quotes ("..."), a date is written 2020-11-15, '
     "a list [...]"),
]


@pytest.mark.parametrize(("name", "text", "said"), WORDED, ids=[c[0] for c in WORDED])
def test_problems_are_said_in_the_products_words(
        tmp_path: Path, name: str, text: str, said: str) -> None:
    status, lines, path = check_text(tmp_path, text)
    assert status == 78, lines
    assert f"{path}:{said}" in lines, lines
    for raw in ("Cannot declare", "Illegal character", "~", "Invalid value",
                "has no attribute", "is undefined", "Error validating", "Invalid weekday"):
        assert raw not in "\n".join(lines)
    assert not any(ln.endswith(":") for ln in lines), lines


TEMPLATES = HEAD + """
[templates.reminder]
title = "{{ deadline.title }"

[templates.due]
title = "{% if deadline.url %}{{ deadline.url }}"

[templates.overdue]
body = "{{ deadline.titel }} is overdue"

[templates.completed]
title = "{{ deadline.title | upperr }}"

[templates.digest]
body = \"\"\"
Open:
{{ opne_count }}\"\"\"
""" + DEADLINE


def test_every_template_problem_is_reported_in_our_words(tmp_path: Path) -> None:
    status, lines, path = check_text(tmp_path, TEMPLATES)
    assert status == 78
    assert lines == [f"{path}:{said}" for said in [
        "8:9: templates.reminder.title: a single }: close {{ ... }} with }}",
        "11:9: templates.due.title: {% if %} is not closed: add {% endif %}",
        "14:8: templates.overdue.body: unknown variable deadline.titel (did you mean "
        "deadline.title?)",
        "17:9: templates.completed.title: unknown filter upperr (did you mean upper?)",
        "20:8: templates.digest.body: unknown variable opne_count (did you mean open_count?) "
        "(line 2 of the template)",
    ]], lines


def readme_examples() -> list[tuple[str, str]]:
    """README's example files and what `check` prints for each."""
    section = README.read_text(encoding="utf-8").split(
        "(`tests/test_config_wording.py` checks", 1)[1]
    blocks = [textwrap.dedent(b) for b in
              re.findall(r"\n  ```(?:toml)?\n(.*?\n)  ```\n", section, re.DOTALL)[:4]]
    return [(blocks[0], blocks[1]), (blocks[2], blocks[3])]


@pytest.mark.parametrize(("text", "said"), readme_examples())
def test_the_readmes_examples_are_what_check_says(tmp_path: Path, text: str, said: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    (tmp_path / "config.toml").chmod(0o600)
    proc = subprocess.run([sys.executable, "-m", "notifier", "check", "-c", "config.toml"],
                          cwd=tmp_path, capture_output=True, text=True, check=False,
                          env=clean_env())
    assert (proc.returncode, proc.stdout, proc.stderr) == (78, "", said)
