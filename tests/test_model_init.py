"""model.set_through_slots: the quicker constructor the model's classes are given behaves
as the dataclass's own, which it replaces."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import typing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from aggregator.model import (
    Enclosure,
    Entry,
    Provenance,
    Published,
    SourceEntry,
    set_through_slots,
)

MODEL = (Published, Provenance, Enclosure, SourceEntry, Entry)


def _plain(cls: type) -> type:
    """The same dataclass, with the constructor dataclasses writes."""
    fields = [
        (f.name, f.type, dataclasses.field(default=f.default))
        if f.default is not dataclasses.MISSING
        else (f.name, f.type)
        for f in dataclasses.fields(cls)
    ]
    namespace = {"__post_init__": cls.__post_init__} if hasattr(cls, "__post_init__") else {}
    return dataclasses.make_dataclass(
        cls.__name__, fields, namespace=namespace, frozen=True, slots=True
    )


@pytest.mark.parametrize("cls", MODEL, ids=lambda c: c.__name__)
def test_the_signature_is_the_dataclass_s(cls: type) -> None:
    ours = inspect.signature(cls).parameters
    theirs = inspect.signature(_plain(cls)).parameters
    assert [(p.name, p.default, p.kind) for p in ours.values()] == [
        (p.name, p.default, p.kind) for p in theirs.values()
    ]


@pytest.mark.parametrize("cls", MODEL, ids=lambda c: c.__name__)
def test_its_annotations_read_as_the_dataclass_s(cls: type) -> None:
    # (Made in the class's module, the constructor's string annotations resolve there.)
    assert cls.__init__.__module__ == cls.__module__
    fields = typing.get_type_hints(cls)
    assert typing.get_type_hints(cls.__init__) == {**fields, "return": type(None)}
    parameters = inspect.signature(cls, eval_str=True).parameters
    assert {name: p.annotation for name, p in parameters.items()} == fields


NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
WHERE = Provenance("NATO", "https://example.org/feed.xml")

# Arguments given positionally, and what the dataclass's own constructor makes of them.
CASES: list[tuple[type, tuple[object, ...]]] = [
    (Published, (date(2026, 12, 1),)),
    (Published, (date(2026, 12, 1), NOW)),
    (Provenance, ("NATO", "news.txt", 12, "https://example.org/news")),
    (Provenance, ("NATO", "news.txt")),
    (Enclosure, ("https://example.org/a.mp3", "audio/mpeg", 10, True)),
    (SourceEntry, ("Title", Published.at(NOW), "Summary", WHERE)),
    (
        SourceEntry,
        ("Title", None, "", WHERE, "https://example.org/1", "Ann", "g-1", None, ("a",), "<p>x</p>"),
    ),
    (Entry, ("tag:x", "Title", None, "Summary", (WHERE,), NOW, NOW)),
    (Entry, ("tag:x", "T", Published.at(NOW), "S", (WHERE,), NOW, NOW, None, None, ("t",))),
]


@pytest.mark.parametrize("cls, args", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_it_makes_what_the_dataclass_makes(cls: type, args: tuple[object, ...]) -> None:
    plain = _plain(cls)
    made, expected = cls(*args), plain(*args)
    assert dataclasses.astuple(made) == dataclasses.astuple(expected)
    # By keyword, the same; pickled and back, equal, with the same hash.
    names = [f.name for f in dataclasses.fields(cls)]
    assert cls(**dict(zip(names, args, strict=False))) == made
    again = pickle.loads(pickle.dumps(made))
    assert again == made and hash(again) == hash(made)


@pytest.mark.parametrize("cls", MODEL, ids=lambda c: c.__name__)
def test_it_stays_frozen(cls: type) -> None:
    args = next(args for c, args in CASES if c is cls)
    made = cls(*args)
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, name, "other")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(made, name)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Published(date(2026, 12, 1), datetime(2026, 12, 1, 9)),  # noqa: DTZ001 (naive)
        lambda: Published(date(2026, 12, 2), NOW),  # the day is not the instant's
        lambda: Published(date(2026, 12, 1), NOW.astimezone(timezone(timedelta(hours=-12)))),
        lambda: Enclosure("ftp://example.org/a.mp3"),
        lambda: Enclosure("https://example.org/a.mp3", length=-1),
        lambda: Entry("tag:x", "T", None, "S", (), datetime(2026, 12, 1), NOW),  # noqa: DTZ001
    ],
)
def test_its_checks_still_run(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


@pytest.mark.parametrize("cls", MODEL, ids=lambda c: c.__name__)
def test_wrong_arguments_are_refused_as_before(cls: type) -> None:
    with pytest.raises(TypeError):
        cls()
    args = next(args for c, args in CASES if c is cls)
    with pytest.raises(TypeError):
        cls(*args, unknown=1)
    fields = len(dataclasses.fields(cls))
    with pytest.raises(TypeError):
        cls(*args, *([None] * (fields + 1 - len(args))))


def test_fields_of_any_name_are_set() -> None:
    # (Names the constructor uses itself, were they a field's, would be shadowed.)
    @set_through_slots
    @dataclass(frozen=True, slots=True)
    class Odd:
        _set_1: int
        self: int
        make: int = 3
        _default_2: int = 4

    odd = Odd(1, 2)
    assert (odd._set_1, odd.self, odd.make, odd._default_2) == (1, 2, 3, 4)
    assert Odd(_set_1=5, self=6, make=7, _default_2=8) == Odd(5, 6, 7, 8)


def test_a_class_it_cannot_build_is_refused() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordsOnly:
        a: int

    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    for cls in (NoSlots, KeywordsOnly, Factory):
        with pytest.raises(TypeError, match=r"\.a is not a slot given in order"):
            set_through_slots(cls)
