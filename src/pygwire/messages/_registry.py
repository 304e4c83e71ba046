"""The decoders' tables, derived from the message declarations.

Every message class declares itself once (:func:`._base.message`); this
module only reads :data:`._base.REGISTRY` after every family module has
been imported, and arranges it the way the stream decoders look messages
up: by identifier byte and direction, by request code for startup packets,
by phase for the client's ``p`` family.
"""

from __future__ import annotations

from ..constants import ConnectionPhase
from . import auth, copy, errors, extended_query, misc, simple_query, startup, status
from ._base import REGISTRY, BackendMessage, CommonMessage, Declaration, FrontendMessage

__all__ = [
    "BACKEND",
    "DECLARATIONS",
    "FRONTEND",
    "P_FAMILY",
    "STARTUP_CODES",
    "Declaration",
]

# Every family module declares its messages on import.
_FAMILIES = (auth, copy, errors, extended_query, misc, simple_query, startup, status)

#: Every declaration, by class.
DECLARATIONS: dict[type, Declaration] = {d.cls: d for d in REGISTRY}


def _by_identifier(side: type) -> dict[int, Declaration]:
    """The declaration a decoder uses for each identifier byte: the family's
    own class for the 'R' and 'p' families (codes and phases pick the rest)."""
    table: dict[int, Declaration] = {}
    for d in REGISTRY:
        if not d.identifier or d.code is not None or d.decoded_in:
            continue
        if issubclass(d.cls, (side, CommonMessage)):
            assert d.identifier[0] not in table, d
            table[d.identifier[0]] = d
    return table


#: Identifier byte -> declaration, for what clients send.
FRONTEND = _by_identifier(FrontendMessage)
#: Identifier byte -> declaration, for what servers send.
BACKEND = _by_identifier(BackendMessage)

#: Request code -> declaration, for startup-phase packets (StartupMessage
#: itself is any 3.x version and is not listed).
STARTUP_CODES: dict[int, Declaration] = {
    d.code: d for d in REGISTRY if not d.identifier and d.code is not None
}

#: Phase -> the class a client's 'p' message is in it.
P_FAMILY: dict[ConnectionPhase, Declaration] = {
    phase: d for d in REGISTRY for phase in d.decoded_in
}
