"""Frozen records: frozen, slotted dataclasses whose methods are shared, not written anew
for each class.

``dataclasses.dataclass`` writes the source of each class's ``__init__``, ``__eq__``,
``__hash__``, ``__repr__`` and frozen ``__setattr__``/``__delattr__`` and compiles it as
the class is defined: 1.4 ms a class, in every process, every time. The settings, states
and plans a run defines are about 30 classes: 40 ms of the 0.2 s a cron run takes when
every source is fresh (docs/benchmarks.md, issue 14). :func:`record` keeps what
``dataclass`` gives without compiling anything (the fields, ``__slots__``,
``__match_args__``; ``dataclasses.fields``, ``replace`` and ``asdict`` work as before) and
gives every such class the same few functions, which read the class's fields.

An instance costs a little more to make (a loop over the fields rather than a line
each): records are for classes made a few hundred times a run, not once a story (the
stories' own classes, in aggregator.model, stay dataclasses). ``tests/test_records.py``
checks that a record behaves as the frozen, slotted dataclass of the same body.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_MISSING = dataclasses.MISSING


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[T]) -> type[T]:
    """``cls`` as ``@dataclass(frozen=True, slots=True)`` makes it, with shared methods.

    Fields given by position or name, in order, each with its default or default
    factory (a field with ``init=False`` takes its default, or what ``__post_init__``
    sets); ``__post_init__`` runs after them. ``kw_only`` fields are refused here, at
    definition; ``InitVar`` is not supported."""
    # A class without a docstring is given one by dataclass, from inspect.signature:
    # for a record's (the object's own __init__) that parses a text signature with the
    # tokenize module, whose patterns take 10 ms to compile, once a process. Named here
    # instead, as dataclass would name it.
    undocumented = not cls.__doc__
    if undocumented:
        cls.__doc__ = cls.__name__
    made: Any = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)(cls)
    fields = dataclasses.fields(made)
    for field in fields:
        if field.kw_only:
            raise TypeError(f"{cls.__name__}.{field.name}: a record's fields are given in order")
    if any(name in cls.__dict__ for name in _OWN):
        raise TypeError(f"{cls.__name__} defines what a record gives: {_OWN}")
    given = [field for field in fields if field.init]
    made.__record_all__ = tuple(field.name for field in fields)
    made.__record_fields__ = tuple(field.name for field in given)
    made.__record_names__ = frozenset(made.__record_fields__)
    made.__record_defaults__ = tuple(
        (field.name, field.default, field.default_factory) for field in given
    )
    # Fields the constructor does not take (init=False): their defaults, if any (else
    # __post_init__ sets them).
    made.__record_later__ = tuple(
        (field.name, field.default, field.default_factory)
        for field in fields
        if not field.init
        and (field.default is not _MISSING or field.default_factory is not _MISSING)
    )
    made.__record_compared__ = _getter([f.name for f in fields if f.compare])
    made.__record_hashed__ = _getter(
        [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
    )
    made.__record_shown__ = tuple(field.name for field in fields if field.repr)
    made.__record_post__ = getattr(made, "__post_init__", None)
    if undocumented:
        made.__doc__ = f"{cls.__name__}({', '.join(made.__record_fields__)})"
    made.__init__ = _init
    made.__eq__ = _eq
    made.__hash__ = _hash
    made.__repr__ = _repr
    made.__setattr__ = _setattr
    made.__delattr__ = _delattr
    made.__getstate__ = _getstate
    made.__setstate__ = _setstate
    result: type[T] = made
    return result


_OWN = ("__init__", "__eq__", "__hash__", "__repr__", "__setattr__", "__delattr__")


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of ``names`` of an object, as a tuple (``attrgetter`` of one name
    gives the value itself)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda obj: (one(obj),)
    many: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*names)
    return many


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    names = cls.__record_fields__
    if len(args) > len(names):
        raise TypeError(f"{cls.__name__}() takes {len(names)} arguments but {len(args)} were given")
    setter = object.__setattr__
    given = len(args)
    for position, (name, default, factory) in enumerate(cls.__record_defaults__):
        if position < given:
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            setter(self, name, args[position])
        elif name in kwargs:
            setter(self, name, kwargs[name])
        elif default is not _MISSING:
            setter(self, name, default)
        elif factory is not _MISSING:
            setter(self, name, factory())
        else:
            raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
    for name, default, factory in cls.__record_later__:
        setter(self, name, default if default is not _MISSING else factory())
    if kwargs and not cls.__record_names__.issuperset(kwargs):
        unknown = sorted(set(kwargs) - cls.__record_names__)[0]
        raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {unknown!r}")
    if cls.__record_post__ is not None:
        self.__post_init__()


def _eq(self: Any, other: Any) -> Any:
    cls: Any = self.__class__
    if other.__class__ is not cls:
        return NotImplemented
    compared = cls.__record_compared__
    return compared(self) == compared(other)


def _hash(self: Any) -> int:
    cls: Any = self.__class__  # (read on the instance, a lambda would be bound to it)
    return hash(cls.__record_hashed__(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_shown__)
    return f"{type(self).__qualname__}({shown})"


def _setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self.__record_all__]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__record_all__, state, strict=True):
        object.__setattr__(self, name, value)
