"""MkDocs hook: tables generated from pygwire itself at build time.

A page asks for a table with an HTML comment on a line of its own:

* ``<!-- pygwire:transition-table -->``: the state model's rules, from
  :func:`pygwire.state_machine.transition_table`, one table per state;
* ``<!-- pygwire:message-index -->``: every message class with its
  identifier, direction and family, from the message registry.

So the rules and the message list exist once, in the code, and the pages
cannot drift from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pygwire.messages import BackendMessage, FrontendMessage, PGMessage
from pygwire.messages._base import REGISTRY
from pygwire.state_machine import transition_table

__all__ = ["message_index", "on_page_markdown", "transition_markdown"]

_MARKER = re.compile(r"^<!-- pygwire:([a-z-]+) -->$", re.MULTILINE)

# Family module -> its reference page, relative to docs/reference/messages/.
_FAMILY_PAGES = {
    "startup": "startup.md",
    "auth": "auth.md",
    "simple_query": "simple-query.md",
    "extended_query": "extended-query.md",
    "copy": "copy.md",
    "errors": "errors.md",
    "status": "status.md",
    "misc": "misc.md",
}


def transition_markdown() -> str:
    """The rules of the state model, grouped by the state they start from."""
    by_state: dict[str, list[tuple[str, str, str]]] = {}
    for state, sender, message, target in transition_table():
        by_state.setdefault(state, []).append((sender, message, target))
    out = [f"{len(transition_table())} rules in {len(by_state)} states.", ""]
    for state, rules in by_state.items():
        out += [f"### `{state}`", "", "| sender | message | next state |", "|---|---|---|"]
        for sender, message, target in rules:
            out.append(f"| {sender} | `{message}` | `{target}` |")
        out.append("")
    return "\n".join(out)


def _direction(cls: type[PGMessage]) -> str:
    if issubclass(cls, FrontendMessage):
        return "frontend"
    if issubclass(cls, BackendMessage) or cls.direction is not None:
        return "backend"
    return "both"


def message_index() -> str:
    """Every declared message: identifier, direction, family page."""
    out = ["| message | identifier | sent by | family |", "|---|---|---|---|"]
    for d in REGISTRY:
        cls = d.cls
        family = cls.__module__.rsplit(".", 1)[-1]
        page = _FAMILY_PAGES[family]
        anchor = f"{cls.__module__}.{cls.__qualname__}"
        ident = f"`{d.identifier.decode()}`" if d.identifier else "(none)"
        if d.code is not None:
            ident += f" + code {d.code}"
        title = family.replace("_", " ")
        out.append(
            f"| [`{cls.__name__}`]({page}#{anchor}) | {ident} | {_direction(cls)} | {title} |"
        )
    return "\n".join(out) + "\n"


_GENERATORS: dict[str, Callable[[], str]] = {
    "transition-table": transition_markdown,
    "message-index": message_index,
}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each marker with its table (an unknown marker is an error)."""

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _GENERATORS:
            raise ValueError(f"unknown pygwire marker {name!r}")
        return _GENERATORS[name]()

    return _MARKER.sub(expand, markdown)
