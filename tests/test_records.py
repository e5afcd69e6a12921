"""A record (aggregator.records) behaves as the frozen, slotted dataclass of the same
body: the same constructor, equality, hash, text, fields, copies and errors."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from aggregator.records import record


class _Body:
    """The body both classes are made of."""

    name: str
    count: int = 0
    tags: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list, compare=False)
    hidden: str = field(default="h", repr=False)
    loose: float = field(default=0.0, hash=False)


def _made(decorate: Any, name: str, body: type = _Body) -> Any:
    namespace = {k: v for k, v in vars(body).items() if k not in ("__dict__", "__weakref__")}
    made = decorate(type(name, (), {**namespace, "__qualname__": name}))
    made.__module__ = __name__  # pickled by name, as a module's own class
    return made


Record = _made(record, "Record")
Data = _made(dataclass(frozen=True, slots=True), "Data")

CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("a",), {}),
    (("a", 2), {}),
    (("a", 2, ("x",), ["n"], "s", 1.5), {}),
    ((), {"name": "b", "loose": 2.0}),
    (("c",), {"tags": ("y", "z"), "hidden": "q"}),
]


def _outcome(make: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return make(*args, **kwargs)
    except TypeError as error:
        return type(error)


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_a_record_is_made_read_and_compared_as_the_dataclass(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ours, theirs = Record(*args, **kwargs), Data(*args, **kwargs)
    names = [f.name for f in dataclasses.fields(Data)]
    assert [f.name for f in dataclasses.fields(Record)] == names
    assert [getattr(ours, n) for n in names] == [getattr(theirs, n) for n in names]
    assert repr(ours) == repr(theirs).replace("Data(", "Record(", 1)
    assert dataclasses.asdict(ours) == dataclasses.asdict(theirs)
    assert Record.__match_args__ == Data.__match_args__
    assert not hasattr(ours, "__dict__") and Record.__slots__ == Data.__slots__
    # Equal to an equal one, whatever the fields left out of comparing; hashed alike.
    twin = dataclasses.replace(ours, notes=["other"], loose=ours.loose)
    assert twin == ours and hash(twin) == hash(ours)
    assert (dataclasses.replace(theirs, notes=["other"]) == theirs) is True
    different = dataclasses.replace(ours, count=ours.count + 1)
    assert different != ours and dataclasses.replace(theirs, count=theirs.count + 1) != theirs
    # A field left out of the hash (hash=False) still counts in comparing.
    moved = dataclasses.replace(ours, loose=ours.loose + 1)
    assert moved != ours and hash(moved) == hash(ours)
    assert (ours == theirs) is False  # another class
    for copied in (copy.copy(ours), copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert copied == ours and type(copied) is Record
        assert copied.notes == ours.notes


def test_records_of_one_field_or_none_compared_are_hashed_as_the_dataclass() -> None:
    # (found by review: one field's getter, read on the instance, was given it twice)
    for decorate in (record, dataclass(frozen=True, slots=True)):

        @decorate
        class One:
            value: int

        @decorate
        class Loose:
            value: int
            notes: list[str] = field(default_factory=list, compare=False)

        @decorate
        class Nothing:
            notes: list[str] = field(default_factory=list, compare=False)

        assert hash(One(1)) == hash(One(1)) and One(1) != One(2)
        assert {One(1), One(1), One(2)} == {One(1), One(2)}
        assert hash(Loose(1, ["a"])) == hash(Loose(1, ["b"])) and Loose(1, ["a"]) == Loose(1)
        assert hash(Nothing(["a"])) == hash(Nothing()) and Nothing(["a"]) == Nothing()


def test_a_record_is_frozen_as_the_dataclass() -> None:
    ours, theirs = Record("a"), Data("a")
    for thing in (ours, theirs):
        with pytest.raises(dataclasses.FrozenInstanceError):
            thing.name = "b"
        with pytest.raises(dataclasses.FrozenInstanceError):
            del thing.count
        with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
            thing.other = 1


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),  # name is required
        (("a", 1, (), [], "h", 0.0, "extra"), {}),  # too many
        (("a",), {"name": "b"}),  # twice
        (("a",), {"colour": "red"}),  # unknown
    ],
)
def test_wrong_arguments_are_refused_as_the_dataclass_refuses_them(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    assert _outcome(Record, *args, **kwargs) is TypeError
    assert _outcome(Data, *args, **kwargs) is TypeError


class _LaterBody:
    """A body with fields the constructor does not take."""

    value: int
    made: int = field(default=0, init=False)
    derived: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "derived", f"#{self.value}")


def test_a_field_the_constructor_does_not_take_is_its_default_or_set_after() -> None:
    Later = _made(record, "Later", _LaterBody)
    Same = _made(dataclass(frozen=True, slots=True), "Same", _LaterBody)
    ours, theirs = Later(4), Same(4)
    assert (ours.value, ours.made, ours.derived) == (theirs.value, theirs.made, theirs.derived)
    assert repr(ours).replace("Later", "Same") == repr(theirs)
    assert _outcome(Later, 4, 1) is _outcome(Same, 4, 1) is TypeError  # not taken
    assert dataclasses.replace(ours, value=5).derived == "#5"
    copied = copy.deepcopy(ours)
    assert copied == ours and copied.derived == "#4"


def test_post_init_runs_after_the_fields_and_may_check_them() -> None:
    @record
    class Checked:
        low: int
        high: int = 10

        def __post_init__(self) -> None:
            if self.low > self.high:
                raise ValueError("low above high")
            object.__setattr__(self, "high", max(self.high, self.low))

    assert Checked(3).high == 10
    with pytest.raises(ValueError, match="low above high"):
        Checked(11)


def test_what_a_record_cannot_be_is_refused_where_it_is_defined() -> None:
    with pytest.raises(TypeError, match="given in order"):

        @record
        class Named:
            shown: int
            named: int = field(default=0, kw_only=True)

    with pytest.raises(TypeError, match="defines what a record gives"):

        @record
        class Own:
            value: int

            def __repr__(self) -> str:
                return "mine"


def test_a_record_without_a_docstring_is_named_by_its_fields_and_one_with_keeps_it() -> None:
    @record
    class Bare:
        first: int
        second: str = ""

    @record
    class Told:
        """What it is."""

        first: int

    assert Bare.__doc__ == "Bare(first, second)"
    assert Told.__doc__ == "What it is."
