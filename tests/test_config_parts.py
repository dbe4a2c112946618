"""A large schedule is read a batch of deadlines at a time; the result must be the same.

`batches.load_in_parts` cuts the file by lines (notifier.config.tomlsplit), reads and
validates the head and each batch of `[[deadlines]]` tables, and gives up
(None) at the first problem or unusual shape, when `config.load` reads the
whole file instead. These tests check the cut on plain values, and that any
file it loads comes out exactly as the whole-file path loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.config import batches, resolve, tomlsplit
from notifier.config import loader as config
from notifier.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

HEAD = """\
[defaults]
timezone = "Asia/Baku"
reminders = ["3d", "1d"]

[channels.ops]
url = "jsonl:///tmp/out.jsonl"
"""


def deadline(i: int, *, extension: bool = False, notes: str | None = None) -> str:
    text = f'[[deadlines]]\nid = "d{i}"\ntitle = "Deadline {i}"\ndue = 2030-01-{i % 28 + 1:02d}\n'
    if notes is not None:
        text += f'notes = """\n{notes}\n"""\n'
    if extension:
        text += (f"\n[[deadlines.extensions]]\ndue = 2030-02-{i % 28 + 1:02d}\n"
                 'announced = 2029-12-01T10:00:00Z\nreason = "asked"\n')
    return text


def test_head_tables_anywhere_go_to_the_head() -> None:
    text = deadline(1) + "\n" + HEAD + "\n" + deadline(2, extension=True) + '[digest]\nschedule = "0 8 * * 1"\n'
    parts = tomlsplit.split(text)
    assert parts is not None
    assert [text[a:b].split("\n")[1] for a, b in parts.spans] == ['id = "d1"', 'id = "d2"']
    assert "[[deadlines.extensions]]" in text[slice(*parts.spans[1])]
    assert "[defaults]" in parts.head
    assert "[digest]" in parts.head
    assert "deadlines" not in parts.head
    assert [parts.table(k) for k in range(len(parts))] == [text[a:b] for a, b in parts.spans]


@pytest.mark.parametrize("odd", [
    '[deadlines.meta]\nx = 1\n',            # a sub-table of the last deadline
    '[["deadlines"]]\nid = "q"\n',          # quoted
    "[deadlines]\nx = 1\n",                 # not an array of tables
    "[[deadlines.extensions]]\ndue = 2030-01-01\n",  # before any deadline
])
def test_unusual_shapes_are_read_whole(odd: str) -> None:
    text = odd + HEAD + deadline(1) if "extensions" in odd else HEAD + deadline(1) + odd
    assert tomlsplit.split(text) is None


def test_spaces_and_comments_in_headers_are_plain() -> None:
    text = HEAD + deadline(1).replace("[[deadlines]]", "  [[ deadlines ]]  # the first")
    parts = tomlsplit.split(text)
    assert parts is not None
    assert len(parts.spans) == 1


def load_both(tmp_path: Path, text: str) -> tuple[config.Config | None, config.Config | str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    in_parts = batches.load_in_parts(path, text, dict(os.environ), check_urls=True)
    try:
        whole: config.Config | str = config.load(path, in_parts=False)
    except ConfigError as e:
        whole = str(e)
    return in_parts, whole


def test_the_example_config_loads_in_parts_the_same(tmp_path: Path) -> None:
    text = (ROOT / "config.example.toml").read_text()
    in_parts, whole = load_both(tmp_path, text)
    assert in_parts is not None
    assert in_parts == whole
    assert len(in_parts.schedule.deadlines) == 3


def test_a_header_inside_a_multiline_string_is_read_whole_and_right(tmp_path: Path) -> None:
    text = HEAD + deadline(1, notes="[[deadlines]]\nid = \"fake\"") + deadline(2)
    in_parts, whole = load_both(tmp_path, text)
    assert in_parts is None  # three tables cut, two read: so read whole
    assert isinstance(whole, config.Config)
    assert [d.id for d in whole.schedule.deadlines] == ["d1", "d2"]
    assert whole.schedule.deadlines[0].notes == '[[deadlines]]\nid = "fake"\n'


def test_a_reload_reads_only_the_tables_that_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    body = [deadline(i, extension=i % 3 == 0) for i in range(50)]
    # A table with a warning is read again by every reload (its warning is located).
    body.append('[[deadlines]]\nid = "warned"\ntitle = "W"\ndue = 2030-01-05T12:00:00\n'
                'reminders = ["0d"]\n')
    path.write_text(HEAD + "".join(body))
    assert config.load(path).tables is None  # only a daemon keeps them
    first = config.load(path, for_reload=True)
    assert first.tables is not None
    assert len(first.warnings) == 1
    read: list[int] = []
    real = resolve.resolve_deadline

    def spy(d: object, i: int, *args: object) -> object:
        read.append(i)
        return real(d, i, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(batches, "resolve_deadline", spy)
    body[7] = body[7].replace("due = 2030-01-08", "due = 2030-03-08")
    body.insert(20, deadline(99))
    path.write_text(HEAD + "".join(body))
    second = config.load(path, previous=first)
    assert read == [7, 20, 51]
    assert len(second.warnings) == 1
    read.clear()
    assert second == config.load(path, in_parts=False)
    unchanged = [d for d in second.schedule.deadlines if d.id not in ("d7", "d99", "warned")]
    assert all(any(d is old for old in first.schedule.deadlines) for d in unchanged)
    read.clear()
    path.write_text(HEAD.replace('"3d", "1d"', '"2d"') + "".join(body))
    third = config.load(path, previous=second)
    assert len(read) == 52  # the defaults changed: every table is read again
    assert third == config.load(path, in_parts=False)


def test_a_problem_in_a_later_batch_is_reported_by_the_whole_file_path(tmp_path: Path) -> None:
    body = "".join(deadline(i) for i in range(batches.BATCH + 5))
    body = body.replace('id = "d2003"\ntitle = "Deadline 2003"\ndue = 2030-01-16',
                        'id = "d2003"\ntitle = "Deadline 2003"\ndue = "soon"')
    path = tmp_path / "config.toml"
    path.write_text(HEAD + body)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.path == "deadlines.2003.due"
    assert problem.line == (HEAD + body).split("\n").index('due = "soon"') + 1


def test_duplicate_ids_across_batches_are_found(tmp_path: Path) -> None:
    body = "".join(deadline(i) for i in range(batches.BATCH + 2)) + deadline(7)
    path = tmp_path / "config.toml"
    path.write_text(HEAD + body)
    with pytest.raises(ConfigError, match="duplicate id"):
        config.load(path)


LAYOUT = st.lists(st.sampled_from(["deadline", "extended", "noted", "trap", "head",
                                   "comment", "blank", "array"]), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=LAYOUT, batch=st.integers(1, 4))
def test_any_layout_loads_in_parts_as_whole(
        tmp_path: Path, layout: list[str], batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "BATCH", batch)
    pieces: list[str] = []
    head_done = False
    for i, what in enumerate(layout):
        if what == "deadline":
            pieces.append(deadline(i))
        elif what == "extended":
            pieces.append(deadline(i, extension=True))
        elif what == "noted":
            pieces.append(deadline(i, notes="line one\n  not [a header]\nline three"))
        elif what == "trap":
            pieces.append(deadline(i, notes="[[deadlines]]\n[defaults]"))
        elif what == "head" and not head_done:
            pieces.append(HEAD)
            head_done = True
        elif what == "comment":
            pieces.append("# [[deadlines]] in a comment\n")
        elif what == "array":
            pieces.append(deadline(i) + 'tags = [\n  "a",\n  "b",\n]\n')
        else:
            pieces.append("\n")
    if not head_done:
        pieces.append(HEAD)
    text = "".join(pieces)
    in_parts, whole = load_both(tmp_path, text)
    if in_parts is not None:
        assert in_parts == whole
    elif "trap" not in layout and any(w in layout for w in ("deadline", "extended", "noted")):
        pytest.fail("a plain file was read whole")


def test_toml_1_1_times_without_seconds_are_read(tmp_path: Path) -> None:
    text = HEAD + deadline(1).replace("due = 2030-01-02", "due = 2030-01-02T17:30")
    in_parts, whole = load_both(tmp_path, text)
    assert isinstance(whole, config.Config)
    assert in_parts == whole
    due = whole.schedule.deadlines[0].stages[0].due
    assert due.isoformat() == "2030-01-02T13:30:00+00:00"  # 17:30 in Baku


def test_a_syntax_error_after_toml_1_1_is_located_where_it_is(tmp_path: Path) -> None:
    """tomllib (TOML 1.0) stops at the time without seconds; the mistake is later."""
    text = HEAD + deadline(1).replace("due = 2030-01-02", "due = 2030-01-02T17:30") \
        + deadline(2).replace('title = "Deadline 2"', 'title = "Deadline 2" x')
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    (problem,) = caught.value.problems
    assert problem.line == text.split("\n").index('title = "Deadline 2" x') + 1
    assert problem.message.startswith("TOML syntax: ")
