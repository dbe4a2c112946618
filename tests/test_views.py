"""Plan items as JSON: the text written directly is what `json.dumps` writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from notifier.output.views import plan_item, plan_json
from notifier.schedule.model import KINDS, Notification

AT = datetime(2020, 11, 15, 14, 54, 7, tzinfo=UTC)
ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
TRICKY = ['say "hi"\\now', "line\nbreak\ttab\x00\x1f\x7f", "Ağdam \u2013 Kəlbəcər ✓ 𝄞",
          "\u2028\u2029", ""]


def note(kind: str, *, deadline: str | None, due: datetime | None, offset: str | None,
         channels: tuple[str, ...], key: str = "k") -> Notification:
    return Notification(at=AT, kind=kind, deadline=deadline, due=due, offset=offset,  # type: ignore[arg-type] # kind drawn from KINDS
                        seq=None, channels=channels, title="t", key=key,
                        stage=None if deadline is None else 0)


def same_as_dumps(n: Notification, title: str, body: str | None) -> None:
    text = plan_json(n, title, body)
    assert text == json.dumps(plan_item(n, title, body), ensure_ascii=False)
    assert json.loads(text) == plan_item(n, title, body)


@given(kind=st.sampled_from(KINDS), deadline=st.none() | ANY_TEXT,
       due=st.none() | st.datetimes(min_value=datetime(1000, 1, 1),
                                    timezones=st.just(UTC)),
       offset=st.none() | ANY_TEXT, channels=st.lists(ANY_TEXT, max_size=3),
       key=ANY_TEXT, title=ANY_TEXT, body=st.none() | ANY_TEXT)
def test_plan_json_is_json_dumps_of_the_item(
    kind: str, deadline: str | None, due: datetime | None, offset: str | None,
    channels: list[str], key: str, title: str, body: str | None,
) -> None:
    n = note(kind, deadline=deadline, due=due, offset=offset, channels=tuple(channels), key=key)
    same_as_dumps(n, title, body)


def test_plan_json_escapes_what_json_escapes() -> None:
    for text in TRICKY:
        n = note("reminder", deadline=text, due=AT + timedelta(days=1), offset=text,
                 channels=(text, "out"), key=text)
        same_as_dumps(n, text, None)
        same_as_dumps(n, text, text)
    digest = note("digest", deadline=None, due=None, offset=None, channels=())
    same_as_dumps(digest, "notifier digest: 2 open deadlines", None)
