"""Bounding how deeply HTML nests before the sanitiser sees it.

The sanitiser (nh3, on html5ever) is quadratic in nesting depth: one megabyte of
``<div>`` inside ``<div>`` in a description took 17 s to clean (tests/test_clean.py
has the case). News markup nests a handful of levels, so markup nested deeper than
:data:`MAX_DEPTH` is flattened to its text, in one linear pass.

The pass must never let the sanitiser's parser see more nesting than it counted.
A fragment is returned as it was only when it is plain to read the same way here
and there: every "<" starts a tag or a comment, every attribute is well-formed,
every end tag closes the element opened last, and nothing goes past the limit.
Otherwise it is written anew: what was not read as a tag is escaped (``<`` as
``&lt;``), the tags kept are written with only well-formed attributes, and every
element kept open is closed explicitly, in order; an HTML parser then nests it as
counted here, or less (an implied ``<tbody>`` and ``<tr>`` aside). So ordinary
markup is sanitised exactly as before, and no trick of quoting or of HTML's
parsing rules gets deep nesting past the count.
"""

from __future__ import annotations

import re

MAX_DEPTH = 32
# Elements closed by a sibling of the same name ("<li>a<li>b"), as HTML parsers do.
SIBLINGS = frozenset({"p", "li", "dt", "dd", "option", "tr", "td", "th"})
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip
# Elements whose content is text to an HTML parser, up to their end tag ("<script>",
# "<style>"...), and that the sanitiser removes with that content: skipped whole.
DROPPED = frozenset({"script", "style", "iframe", "noembed", "noframes", "xmp"})
# How far down the open elements an end tag looks for its start tag: far enough for
# real markup, and bounded, so that stray end tags cost constant time each.
REACH = MAX_DEPTH

# A comment as HTML parsers end it ("<!-->", "-->", "--!>"; unclosed, at the end), or a
# tag with no "<" or ">" inside it.
# HTML's white space is these five, not Unicode's: "<div\xa0x>" is an element "div\xa0x".
_SPACE = r"\t\n\f\r "
_MARKUP = re.compile(
    rf"<!--(?:-?>|.*?(?:--!?>|\Z))|<(/?)([A-Za-z][^{_SPACE}/<>]*+)([^<>]*+)>", re.DOTALL
)
_NAME = re.compile(r"[a-z][a-z0-9:_.-]*")
# An attribute: a name, and a value in double, single or no quotes. Possessive (no
# backtracking), so that a long run of attribute text costs linear time.
_ATTRIBUTE = re.compile(
    rf"""([^{_SPACE}"'=/]++)(?:[{_SPACE}]*+=[{_SPACE}]*+"""
    rf"""(?:"([^"]*+)"|'([^']*+)'|([^{_SPACE}"'=`]++)))?+"""
)
_ATTRIBUTES = re.compile(rf"(?:[{_SPACE}]++|/|{_ATTRIBUTE.pattern})*+")


def _start(name: str, attributes: str) -> str:
    """A start tag written anew: an unbalanced quote cannot swallow what follows."""
    if not attributes:
        return f"<{name}>"
    parts = [name]
    for match in _ATTRIBUTE.finditer(attributes):
        key, double, single, bare = match.groups()
        value = next((v for v in (double, single, bare) if v is not None), None)
        parts.append(key if value is None else f'{key}="{value.replace(chr(34), "&quot;")}"')
    return "<" + " ".join(parts) + ">"


def _text(text: str) -> str:
    return text.replace("<", "&lt;")


def _name(raw: str, known: dict[str, str | None]) -> str | None:
    """A tag's name in lower case, or None when no sanitiser would keep such a tag."""
    try:
        return known[raw]
    except KeyError:
        lower = raw.lower()
        name = known[raw] = lower if raw.isascii() and _NAME.fullmatch(lower) else None
        return name


def flatten(fragment: str, limit: int = MAX_DEPTH) -> str:
    """``fragment`` with markup nested deeper than ``limit`` elements reduced to its text
    (``fragment`` itself when it is plainly within the limit)."""
    if fragment.count("<") <= limit:
        return fragment
    out: list[str] = []
    stack: list[str] = []  # open elements; those at index >= limit are not written
    plain = True  # read the same way by any HTML parser, and within the limit
    known: dict[str, str | None] = {}
    position = 0
    matches = _MARKUP.finditer(fragment)
    while (match := next(matches, None)) is not None:
        text = fragment[position : match.start()]
        if "<" in text:
            plain = False
            text = _text(text)
        out.append(text)
        position = match.end()
        closing, raw, attributes = match.groups()
        if raw is None:
            continue  # a comment
        name = _name(raw, known)
        if attributes and plain and _ATTRIBUTES.fullmatch(attributes) is None:
            plain = False
        if name is None:
            plain = False
            continue  # a tag no sanitiser keeps: neither written nor counted
        if closing:
            if not stack or stack[-1] != name:
                plain = False
            for index in range(len(stack) - 1, max(-1, len(stack) - 1 - REACH), -1):
                if stack[index] == name:
                    while len(stack) > index:
                        if len(stack) <= limit:
                            out.append(f"</{stack[-1]}>")
                        stack.pop()
                    break
            continue  # an end tag with no start tag near: dropped
        if name in DROPPED:
            # Its text ends at the first "</name" followed by a space, "/" or ">".
            end = re.compile(rf"</{name}(?:[\s/][^>]*)?(?:>|\Z)", re.IGNORECASE)
            found = end.search(fragment, position)
            position = len(fragment) if found is None else found.end()
            matches = _MARKUP.finditer(fragment, position)
            continue
        if name in VOID:
            if len(stack) < limit:
                out.append(_start(name, attributes))
            continue
        if stack and stack[-1] == name and name in SIBLINGS:
            if len(stack) <= limit:
                out.append(f"</{name}>")
            stack.pop()
        if len(stack) < limit:
            out.append(_start(name, attributes))
        else:
            plain = False
        stack.append(name)
    text = fragment[position:]
    if plain and "<" not in text:
        return fragment
    out.append(_text(text))
    out.extend(f"</{name}>" for name in reversed(stack[:limit]))
    return "".join(out)
