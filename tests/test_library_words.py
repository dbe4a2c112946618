"""Jinja's and click's words never reach the operator (issue 22): a bad template and a bad
flag value are each one line, located, in the product's words, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.checking import check_text

from notifier.cli import main

CONFIG = """\
[defaults]
timezone = "Asia/Baku"

[channels.console]
url = "console://"

[[deadlines]]
id = "kalbajar"
title = "Kalbajar handover"
due = 2020-11-15
"""

# Jinja's words for each family of error, as the operator must never read them.
RAW = ("Expected an expression", "expected token", "unexpected '", "unexpected char '",
       "Encountered", "Jinja", "is unsafe", "No test named", "No filter named", "Missing end",
       "positional argument", "TypeError", "OverflowError", "do_", "sync_", "MAX_RANGE",
       "instances of", "object is not callable", "no loader", "concatenate", "__round__",
       "argument(s)")

# (family, template body, what `check` says after `templates.due.body: `)
TEMPLATES = [
    ("expression missing", "{% for x in %}{% endfor %}", "a value is missing before %}"),
    ("expression missing in {{ }}", "{{ deadline.title + }}",
     "something is missing before }}"),
    ("expected token", "{% for x %}{% endfor %}", "expected in before %}"),
    ("expected token, a name", "{{ deadline.title | }}", "expected a name before }}"),
    ("bracket not closed", "{{ deadline.title | default(}} }}", "( is not closed: add ) before }"),
    ("index not closed", "{{ deadline.title[ }}", "[ is not closed: add ] before }"),
    ("statement not closed", "{% if deadline.url", "{% is not closed: add %}"),
    ("unexpected char", "{{ deadline.title $ 1 }}", "unexpected character $"),
    ("string not closed", "{{ 'abc }}", "a string is not closed: add its closing '"),
    ("unexpected token", "{{ deadline.title ) }}", "unexpected )"),
    ("comment not closed", "{# a note", "{# is not closed: add #}"),
    ("unknown tag", "{% frobnicate %}", "unknown tag {% frobnicate %}"),
    ("end tag without block", "{% endfor %}", "unknown tag {% endfor %} (no open block it ends)"),
    ("wrong end tag", "{% if deadline.url %}{% endfor %}",
     "unknown tag {% endfor %} inside {% if %} (it ends with {% endif %})"),
    ("nesting mistake", "{% for x in deadline.tags %}{% if x %}{% endfor %}",
     "{% endfor %} inside the open {% if %}: close it first with {% endif %}"),
    ("unknown test", "{% if deadline.title is strnig %}x{% endif %}",
     "unknown test strnig (did you mean string?)"),
    ("call syntax", "{{ deadline.title | replace(old='a', 'b') }}",
     "arguments by name (a=1) come after the others"),
    ("sandbox: attribute", "{{ deadline.title.__class__ }}",
     "deadline.title.__class__: not allowed in a template (internal attributes are refused)"),
    ("sandbox: range", "{% for i in range(1000000) %}{% endfor %}",
     "range() too long: at most 100,000 items"),
    ("filter: too many arguments", "{{ deadline.title | default(1, 2, 3, 4) }}",
     "filter default: too many arguments"),
    ("filter: missing arguments", "{{ deadline.title | replace() }}",
     "filter replace: missing arguments old and new"),
    ("test: missing argument", "{% if deadline.title is divisibleby %}x{% endif %}",
     "test divisibleby: missing argument num"),
    ("filter: wrong type", "{{ deadline.title | truncate('a') }}",
     "cannot compare text with a whole number (>=)"),
    ("not callable", "{{ deadline.title() }}", "text is not something to call: drop the ()"),
    ("text plus a number", "{{ deadline.title + 1 }}",
     "cannot add a whole number to text with +: ~ joins any values as text"),
    ("round of text", "{{ deadline.title | round }}", "text cannot be rounded"),
    ("macro arguments", "{% macro m() %}x{% endmacro %}{{ m(1) }}",
     "macro m takes at most 0 arguments"),
    ("include", "{% include 'other' %}",
     "{% extends %}, {% include %} and {% import %} are not available: each template stands alone"),
]




@pytest.mark.parametrize(("family", "body", "said"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_a_template_error_is_one_located_line_in_the_products_words(
        tmp_path: Path, family: str, body: str, said: str) -> None:
    text = CONFIG + f"\n[templates.due]\nbody = {json.dumps(body)}\n"
    status, lines, path = check_text(tmp_path, text)
    assert status == 78, lines
    assert lines == [f"{path}:13:8: templates.due.body: {said}"], lines
    for raw in RAW:
        assert raw not in lines[0], (raw, lines)


# A template from a variable: the line names the variable and quotes nothing of its value.
FROM_ENV = [
    ("unknown tag", "{% frobnicate %}", "unknown tag ***"),
    ("sandbox", "{{ deadline.title.__class__ }}", ": not allowed in a template"),
    ("filter arguments", "{{ deadline.title | replace() }}", "filter ***: missing arguments"),
]


@pytest.mark.parametrize(("family", "body", "said"), FROM_ENV, ids=[t[0] for t in FROM_ENV])
def test_a_template_error_from_a_variable_names_it_and_hides_the_template(
        tmp_path: Path, family: str, body: str, said: str) -> None:
    status, lines, _ = check_text(tmp_path, CONFIG, NOTIFIER_TEMPLATES__DUE__BODY=body)
    assert status == 78, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("NOTIFIER_TEMPLATES__DUE__BODY: "), lines
    assert said in lines[0], lines
    for word in ("frobnicate", "__class__", "deadline", "replace"):
        assert word not in lines[0], lines


# (command line, the one line on stderr): a bad value is said as what it must be.
FLAGS = [
    (["history", "--limit", "0"], "Error: --limit: must be a whole number of 1 or more"),
    (["history", "--limit", "abc"], "Error: --limit: must be a whole number of 1 or more"),
    (["history", "--limit", "2.5"], "Error: --limit: must be a whole number of 1 or more"),
    (["replay", "--from", "2020-11-08", "--speed", "0"],
     "Error: --speed: must be between 1 and 10,000,000"),
    (["replay", "--from", "2020-11-08", "--speed", "abc"],
     "Error: --speed: must be between 1 and 10,000,000"),
    (["replay", "--from", "2020-11-08", "--speed", "nan"],
     "Error: --speed: must be between 1 and 10,000,000"),
    (["replay", "--from", "2020-11-08", "--speed", "2e7"],
     "Error: --speed: must be between 1 and 10,000,000"),
    (["replay", "--from", "2020-11-08", "--epoch", "soon"], "Error: --epoch: must be a number"),
    (["replay", "--from", "yesterday"],
     "Error: --from: not an ISO 8601 date or datetime (2020-11-08 or 2020-11-08T09:00+04:00)"),
    (["plan", "--until", "2020-13-01"],
     "Error: --until: not an ISO 8601 date or datetime (2020-11-08 or 2020-11-08T09:00+04:00)"),
    (["status", "--at", "tomorrow"],
     "Error: --at: not an ISO 8601 date or datetime (2020-11-08 or 2020-11-08T09:00+04:00)"),
    (["status", "--state", "open,late"],
     "Error: --state: 'late' is not a state; must be one of not-announced, open, overdue, "
     "completed, cancelled"),
]


@pytest.mark.parametrize(("args", "said"), FLAGS, ids=[" ".join(f[0]) for f in FLAGS])
def test_a_bad_flag_value_is_one_line_saying_what_it_must_be(
        tmp_path: Path, args: list[str], said: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    result = CliRunner().invoke(main, [*args, "-c", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [said]


@pytest.mark.parametrize(("args", "said"), [
    (["--bogus"], "Error: No such option '--bogus'."),
    (["nosuchcommand"], "Error: No such command 'nosuchcommand'."),
    (["status", "--bogus"], "Error: No such option '--bogus'."),
], ids=["group option", "command", "command option"])
def test_an_unknown_option_or_command_is_one_line(args: list[str], said: str) -> None:
    """Before the command too (`notifier --bogus`): no usage block, no help hint."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [said]
