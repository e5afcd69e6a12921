"""How well topics pick stories: recall and precision over a labelled set.

A labels file is JSON Lines, one story a line::

    {"title": "…", "summary": "…", "sources": ["NATO: deterrence and defence"],
     "categories": [], "labels": {"ukraine": "no", "deterrence": "about"}}

``sources`` (names of configured sources, whose hints apply) and ``categories``
may be left out. Each label is one of :data:`LABELS`, by the rubric an editor
uses: ``about`` when the topic is a main subject of the story (in its title, or a
central point of its summary), ``mentions`` when it is touched in passing (in or
out is fine), ``no`` otherwise. Every topic evaluated needs a label on every line.

* recall: of the stories ``about`` a topic, the share the topic takes;
* precision: of the stories the topic takes, the share labelled ``about`` or
  ``mentions``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aggregator.errors import ConfigError
from aggregator.localfile import read_named
from aggregator.topics import Topic, Verdict, fields_of

LABELS = ("about", "mentions", "no")
KEYS = ("title", "summary", "sources", "categories", "labels")
# Far more than a hand-labelled set holds (the shipped one, 192 stories, is 75 KB);
# the cap keeps a wrong path (a log, a device) from filling the memory.
MAX_BYTES = 32 << 20

log = logging.getLogger("aggregator")


class LabelsError(ConfigError):
    """A labels file that cannot be read, or a line in it that is not a labelled story.

    Bad input, like a bad config: ``aggregator topics evaluate`` exits with the usage
    code (2), never with 1, which says a topic scored below a threshold.
    """


@dataclass(frozen=True, slots=True)
class Labelled:
    """One story of a labels file, with its label per topic."""

    location: str  # file:line
    title: str
    summary: str
    labels: dict[str, str]
    sources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    item: Labelled
    verdict: Verdict

    def __str__(self) -> str:
        return f"{self.item.location}: {self.item.title!r}: {self.verdict}"


@dataclass(frozen=True, slots=True)
class Score:
    """One topic's figures over a labelled set, with the stories it got wrong."""

    topic: str
    about: int  # stories labelled about
    taken: int  # stories the topic took
    found: int  # stories about it that it took
    fitting: int  # stories it took that are labelled about or mentions
    misses: tuple[Decision, ...] = field(default=())  # about, not taken
    wrong: tuple[Decision, ...] = field(default=())  # taken, labelled no

    @property
    def recall(self) -> float:
        return self.found / self.about if self.about else 1.0

    @property
    def precision(self) -> float:
        return self.fitting / self.taken if self.taken else 1.0


def _strings(value: object, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LabelsError(where, f"{key} must be a list of strings")
    return tuple(value)


def parse_line(line: str, where: str) -> Labelled:
    """One labelled story from one line of a labels file."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise LabelsError(where, f"not JSON: {error.msg} at column {error.colno}") from error
    if not isinstance(data, dict):
        raise LabelsError(where, "expected an object with title, summary and labels")
    for key in data:
        if key not in KEYS:
            raise LabelsError(where, f"unknown key {key!r} (expected: {', '.join(KEYS)})")
    title, summary, labels = data.get("title"), data.get("summary", ""), data.get("labels")
    if not isinstance(title, str) or not title.strip():
        raise LabelsError(where, "title must be a non-empty string")
    if not isinstance(summary, str):
        raise LabelsError(where, "summary must be a string")
    if not isinstance(labels, dict) or not labels:
        raise LabelsError(where, 'labels must be an object such as {"ukraine": "about"}')
    for topic, label in labels.items():
        if label not in LABELS:
            raise LabelsError(where, f"labels.{topic}: {label!r} is not one of {', '.join(LABELS)}")
    return Labelled(
        location=where,
        title=title,
        summary=summary,
        labels=labels,
        sources=_strings(data.get("sources", []), where, "sources"),
        categories=_strings(data.get("categories", []), where, "categories"),
    )


def _read(path: Path) -> str:
    """The text of a labels file: a regular file only (a FIFO would block, a device such
    as /dev/zero never end), of at most :data:`MAX_BYTES`."""
    data = read_named(path, MAX_BYTES, what="a labels file", fail=LabelsError)
    file = str(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise LabelsError(f"{file}:{line}", "not UTF-8 text; save it as UTF-8") from error


def load_labels(path: Path) -> list[Labelled]:
    """Every labelled story in ``path``; LabelsError naming file:line on a bad line."""
    text = _read(path)
    items = [
        parse_line(line, f"{path}:{number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("//")
    ]
    if not items:
        raise LabelsError(str(path), "no labelled stories (one JSON object a line)")
    return items


def unknown_labels(topics: Sequence[Topic], items: Sequence[Labelled]) -> list[str]:
    """One line per label slug no topic has: where it first occurs, and how often."""
    known = {topic.slug for topic in topics}
    where: dict[str, list[str]] = {}
    for item in items:
        for slug in item.labels:
            if slug not in known:
                where.setdefault(slug, []).append(item.location)
    choices = ", ".join(sorted(known)) or "none"
    lines = []
    for slug, locations in where.items():
        others = len(locations) - 1
        more = f" (here and on {others} more line{'s' if others > 1 else ''})" if others else ""
        lines.append(
            f"{locations[0]}: no topic {slug!r} in the config; its label is ignored{more}; "
            f"fix the slug or remove the label (the topics are: {choices})"
        )
    return lines


def fraction(text: str) -> float:
    """A threshold from the command line, for argparse's ``type=``: a number from 0 to 1.

    ``nan`` is refused too: every comparison with it is false, so it would pass anything.
    """
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # nan compares False: refused
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1")
    return value


def evaluate(topics: Sequence[Topic], items: Sequence[Labelled]) -> list[Score]:
    """Each topic's recall and precision over ``items``, with its misses and wrong takes.

    A label for a topic the config does not have is not used; a warning names it (a
    misspelt slug would otherwise go unnoticed, or show only as a missing label).
    """
    for item in items:
        for topic in topics:
            if topic.slug not in item.labels:
                raise LabelsError(item.location, f"no label for topic {topic.slug!r}")
    for warning in unknown_labels(topics, items):
        log.warning("%s", warning)
    scores = []
    for topic in topics:
        about = taken = found = fitting = 0
        misses: list[Decision] = []
        wrong: list[Decision] = []
        for item in items:
            label = item.labels[topic.slug]
            verdict = topic.judge(
                fields_of(item.title, item.summary, item.categories), item.sources
            )
            about += label == "about"
            if verdict.matched:
                taken += 1
                found += label == "about"
                fitting += label != "no"
                if label == "no":
                    wrong.append(Decision(item, verdict))
            elif label == "about":
                misses.append(Decision(item, verdict))
        scores.append(Score(topic.slug, about, taken, found, fitting, tuple(misses), tuple(wrong)))
    return scores


def report(scores: Sequence[Score]) -> str:
    """The figures per topic, then each miss and wrong inclusion with its verdict."""
    lines = []
    for score in scores:
        # Of no story about it (or none taken), the share is no figure (found by review:
        # "recall 1.000 (0/0 about)" passed --min-recall with nothing to show for it).
        recall = f"{score.recall:.3f}" if score.about else "n/a"
        precision = f"{score.precision:.3f}" if score.taken else "n/a"
        lines.append(
            f"{score.topic}: recall {recall} ({score.found}/{score.about} about), "
            f"precision {precision} ({score.fitting}/{score.taken} taken)"
        )
        lines += [f"  missed {decision}" for decision in score.misses]
        lines += [f"  wrongly took {decision}" for decision in score.wrong]
    return "\n".join(lines)
