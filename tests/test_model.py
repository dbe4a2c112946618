"""The schedule's values: built by `quick_init`, they behave as the dataclasses they are."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifier.schedule.model import Closure, Deadline, Notification, Offset, Stage, quick_init

DUE = datetime(2020, 11, 25, 8, 0, tzinfo=UTC)


def test_quick_init_takes_positional_keyword_and_default_arguments() -> None:
    stage = Stage(DUE, None, announced=None)
    assert (stage.due, stage.day, stage.announced, stage.reason, stage.source) == (
        DUE, None, None, None, None)
    d = Deadline("kalbajar", "Kalbajar", ZoneInfo("Asia/Baku"), (stage,),
                 reminders=(Offset("1d", 1, timedelta(0)),), channels=("ops",),
                 remind_at=time(9), tags=("handover",))
    assert d == Deadline(
        id="kalbajar", title="Kalbajar", zone=ZoneInfo("Asia/Baku"), stages=(stage,),
        reminders=(Offset(text="1d", days=1, exact=timedelta(0)),), channels=("ops",),
        remind_at=time(9), overdue_every=None, overdue_limit=0, closure=None, notes=None,
        url=None, tags=("handover",))
    assert (d.overdue_limit, d.closure, d.notes) == (0, None, None)
    assert d.span == (DUE - timedelta(days=1) - timedelta(days=3), DUE)
    closure = Closure("completed", DUE)
    assert closure.note is None
    n = Notification(DUE, "due", "kalbajar", DUE, None, None, ("ops",), "Kalbajar", "k", 0)
    assert dataclasses.replace(n, key="j").key == "j"


def test_quick_init_values_stay_frozen_and_check_their_arguments() -> None:
    stage = Stage(DUE, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stage.due = DUE  # type: ignore[misc]  # the point: it is read-only
    with pytest.raises(TypeError, match="missing"):
        Stage(DUE)  # type: ignore[call-arg]  # the point: a missing argument
    with pytest.raises(TypeError, match="unexpected keyword"):
        Stage(DUE, None, None, when=DUE)  # type: ignore[call-arg]  # the point: an unknown one
    assert hash(stage) == hash(Stage(DUE, None, None))


def test_quick_init_refuses_a_default_factory() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="default_factory"):
        quick_init(WithFactory)
