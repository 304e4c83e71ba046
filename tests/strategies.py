"""Hypothesis strategies for every protocol message, and where each decodes.

:data:`STRATEGIES` maps each concrete message class of
:mod:`pygwire.messages` to a strategy that builds only instances the wire
can carry: strings without NUL and encodable as UTF-8, Int16 counts kept
small, integers inside the range of their wire type, secret keys of 4 to
256 bytes, and so on.  :func:`contexts_for` tells which decoder, in which
phase, turns a message's bytes back into it; :data:`SEQUENCE_CONTEXTS` lists
the (decoder, phase) pairs under which several messages can be decoded one
after the other, with :func:`sequences` drawing such a pipeline.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import NamedTuple, TypeVar

from hypothesis import strategies as st

from pygwire import (
    BackendMessageDecoder,
    ConnectionPhase,
    FrontendMessageDecoder,
    StartupRequestCode,
)
from pygwire import messages as m
from pygwire.codec import MessageDecoder
from pygwire.constants import MAX_CANCEL_KEY_LENGTH, PROTOCOL_V3_GREASE, ErrorField
from pygwire.messages._registry import DECLARATIONS

__all__ = [
    "ALL_MESSAGE_CLASSES",
    "STRATEGIES",
    "SEQUENCE_CONTEXTS",
    "DecodingContext",
    "any_message",
    "contexts_for",
    "payload_of",
    "sequences",
]

# -- building blocks -----------------------------------------------------------

T = TypeVar("T")

#: Lists inside messages stay short: the Int16 limit is tested separately.
MAX_LIST = 6

int16s = st.integers(-(2**15), 2**15 - 1)
int32s = st.integers(-(2**31), 2**31 - 1)
uint32s = st.integers(0, 2**32 - 1)
int8s = st.integers(-128, 127)

#: Any character UTF-8 can carry (no lone surrogates), except NUL, which
#: would end a C string early.
_chars = st.characters(codec="utf-8", exclude_characters="\x00")


def texts(*, min_size: int = 0, max_size: int = 24) -> st.SearchStrategy[str]:
    """Text that fits a NUL-terminated UTF-8 string field."""
    return st.text(_chars, min_size=min_size, max_size=max_size)


names = texts(min_size=1, max_size=16)
blobs = st.binary(max_size=64)
values = st.none() | blobs
format_codes = st.sampled_from([0, 1]) | int16s


def _no_nul(b: bytes) -> bytes:
    return b.replace(b"\x00", b"\x01")


#: A byte string that is never valid UTF-8 (0xFF cannot occur in UTF-8)
#: and has no NUL: a PasswordMessage must decode it back as ``bytes``.
non_utf8_passwords = st.builds(
    lambda a, b: _no_nul(a) + b"\xff" + _no_nul(b),
    st.binary(max_size=16),
    st.binary(max_size=16),
)

secret_keys = st.binary(min_size=4, max_size=MAX_CANCEL_KEY_LENGTH)

protocol_versions = st.sampled_from(
    [StartupRequestCode.V3_0, StartupRequestCode.V3_2, PROTOCOL_V3_GREASE]
) | st.integers(0x0003_0000, 0x0003_FFFF)

#: Error field codes: the documented ones, and any other non-NUL ASCII
#: character, which the protocol tells frontends to keep and ignore.
error_codes = st.sampled_from([f.value for f in ErrorField]) | st.characters(
    min_codepoint=1, max_codepoint=127
)


def _lists(elements: st.SearchStrategy[T]) -> st.SearchStrategy[list[T]]:
    return st.lists(elements, max_size=MAX_LIST)


# -- one strategy per message class ----------------------------------------------
#
# A message's strategy is derived from its declaration: each dataclass field's
# annotation says what the wire can carry (``Annotated[int, INT16]`` an Int16,
# ``str`` a NUL-free string, ``list[...]`` a counted list, an enum its
# members).  Only messages whose fields are constrained beyond their types
# (documented lengths, request codes, field codes) are spelled out below.

_S = st.SearchStrategy


def _for_hint(hint: object) -> _S[object]:
    """Values that fit one field annotation."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        wire = args[1]  # a wire integer type: its name and range
        return st.integers(wire.lo, wire.hi)
    if origin in (types.UnionType, typing.Union):
        return st.one_of([_for_hint(a) for a in args])
    if origin is list:
        return _lists(_for_hint(args[0]))
    if origin is dict:
        return st.dictionaries(_for_hint(args[0]), _for_hint(args[1]), max_size=MAX_LIST)
    if hint is type(None):
        return st.none()
    if hint is bytes:
        return blobs
    if hint is str:
        return texts()
    assert isinstance(hint, type), f"no strategy for {hint!r}: add one to _OVERRIDES"
    if issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if issubclass(hint, tuple) and hasattr(hint, "_fields"):  # a NamedTuple
        return _builds(hint, typing.get_type_hints(hint, include_extras=True))
    raise AssertionError(f"no strategy for {hint!r}: add one to _OVERRIDES")


def _builds(cls: type[T], hints: dict[str, object]) -> _S[T]:
    return st.builds(cls, **{name: _for_hint(hint) for name, hint in hints.items()})


def derived(cls: type[m.PGMessage]) -> _S[m.PGMessage]:
    """The strategy a message's field annotations give."""
    if issubclass(cls, enum.Enum):
        return st.sampled_from(list(cls))
    assert dataclasses.is_dataclass(cls), f"{cls.__name__}: add it to _OVERRIDES"
    hints = typing.get_type_hints(cls, include_extras=True)
    return _builds(cls, {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init})


#: Messages whose fields are constrained beyond their annotations.
_OVERRIDES: dict[type[m.PGMessage], _S[m.PGMessage]] = {
    m.StartupMessage: st.builds(
        m.StartupMessage,
        params=st.dictionaries(names, texts(), max_size=MAX_LIST),
        protocol_version=protocol_versions,
    ),
    m.CancelRequest: st.builds(m.CancelRequest, process_id=int32s, secret_key=secret_keys),
    m.BackendKeyData: st.builds(m.BackendKeyData, process_id=int32s, secret_key=secret_keys),
    # 0x16 is the TLS handshake record type that announces direct SSL.
    m.DirectSSLHandshake: st.builds(
        lambda rest: m.DirectSSLHandshake(data=b"\x16" + rest), st.binary(max_size=64)
    ),
    m.AuthenticationMD5Password: st.builds(
        m.AuthenticationMD5Password, salt=st.binary(min_size=4, max_size=4)
    ),
    # The list ends at an empty name.
    m.AuthenticationSASL: st.builds(m.AuthenticationSASL, mechanisms=_lists(names)),
    # A password is a C string: text, or bytes that are not UTF-8.
    m.PasswordMessage: st.builds(m.PasswordMessage, password=texts() | non_utf8_passwords),
    m.Query: st.builds(m.Query, query_string=texts(max_size=64)),
    # DataRow lays out its own slots (no dataclass fields to read).
    m.DataRow: st.builds(m.DataRow, columns=st.lists(values, max_size=12)),
    m.Describe: st.builds(m.Describe, kind=st.sampled_from(["S", "P"]), name=texts()),
    m.Close: st.builds(m.Close, kind=st.sampled_from(["S", "P"]), name=texts()),
    m.ErrorResponse: st.builds(
        m.ErrorResponse, fields=st.dictionaries(error_codes, texts(), max_size=8)
    ),
    m.NoticeResponse: st.builds(
        m.NoticeResponse, fields=st.dictionaries(error_codes, texts(), max_size=8)
    ),
}

#: Every concrete message class: each declared class but the 'R' family's
#: base, which the Int32 code always resolves to a subclass.
ALL_MESSAGE_CLASSES: tuple[type[m.PGMessage], ...] = tuple(
    cls for cls in DECLARATIONS if cls is not m.AuthenticationMessage
)

STRATEGIES: dict[type[m.PGMessage], _S[m.PGMessage]] = {
    cls: _OVERRIDES[cls] if cls in _OVERRIDES else derived(cls) for cls in ALL_MESSAGE_CLASSES
}


# -- where each message decodes ------------------------------------------------------


class DecodingContext(NamedTuple):
    """A decoder class and the phase it must be in to decode a message."""

    decoder: type[MessageDecoder]
    phase: ConnectionPhase

    def new(self) -> MessageDecoder:
        return self.decoder(self.phase)

    def __str__(self) -> str:
        return f"{self.decoder.__name__}@{self.phase.name}"


FRONTEND_STARTUP = DecodingContext(FrontendMessageDecoder, ConnectionPhase.STARTUP)
FRONTEND_READY = DecodingContext(FrontendMessageDecoder, ConnectionPhase.READY)
BACKEND_READY = DecodingContext(BackendMessageDecoder, ConnectionPhase.READY)

#: Where the declarations do not say: the negotiation answers decode only
#: while the backend decoder waits for them, and a 'p' outside the other
#: exchanges is a PasswordMessage in any phase.
_SPECIAL_CONTEXTS: dict[type[m.PGMessage], tuple[DecodingContext, ...]] = {
    m.PasswordMessage: (
        DecodingContext(FrontendMessageDecoder, ConnectionPhase.AUTHENTICATING),
        FRONTEND_READY,
    ),
    m.SSLResponse: (DecodingContext(BackendMessageDecoder, ConnectionPhase.SSL_NEGOTIATION),),
    m.GSSEncResponse: (DecodingContext(BackendMessageDecoder, ConnectionPhase.GSS_NEGOTIATION),),
}


def contexts_for(cls: type[m.PGMessage]) -> tuple[DecodingContext, ...]:
    """Every (decoder, phase) that decodes a message of class ``cls``, read
    from its declaration: startup packets (no identifier) in the client's
    startup, the 'p' family in the phases it names, the rest by direction.
    CopyData and CopyDone travel both ways, so both decoders read them.
    """
    special = _SPECIAL_CONTEXTS.get(cls)
    if special is not None:
        return special
    declared = DECLARATIONS[cls]
    if declared.decoded_in:
        return tuple(DecodingContext(FrontendMessageDecoder, p) for p in declared.decoded_in)
    if not declared.identifier:
        assert issubclass(cls, m.FrontendMessage), cls
        return (FRONTEND_STARTUP,)
    if issubclass(cls, m.CommonMessage):
        return (FRONTEND_READY, BACKEND_READY)
    if issubclass(cls, m.FrontendMessage):
        return (FRONTEND_READY,)
    assert issubclass(cls, m.BackendMessage), cls
    return (BACKEND_READY,)


def payload_of(msg: m.PGMessage) -> bytes:
    """The payload that ``type(msg).decode`` takes: the wire form minus its header.

    Standard messages lose identifier and length word, startup packets their
    length word; the one-byte negotiation replies and a direct-SSL handshake
    have no header at all.
    """
    wire = msg.to_wire()
    if isinstance(msg, (m.SSLResponse, m.GSSEncResponse, m.DirectSSLHandshake)):
        return wire
    return wire[len(msg.identifier) + 4 :]


# -- pipelines ------------------------------------------------------------------------

_STARTUP_SEQUENCE = (m.StartupMessage, m.CancelRequest)
#: SSLRequest / GSSEncRequest switch the frontend decoder to waiting for the
#: server's answer, so they can only close a startup sequence.
_STARTUP_ENDINGS = (m.SSLRequest, m.GSSEncRequest)


def _classes_for(ctx: DecodingContext) -> list[type[m.PGMessage]]:
    return [
        cls
        for cls in ALL_MESSAGE_CLASSES
        if ctx in contexts_for(cls)
        and cls not in _STARTUP_ENDINGS
        and cls is not m.DirectSSLHandshake
    ]


def _one_of_classes(classes: list[type[m.PGMessage]]) -> _S[m.PGMessage]:
    return st.one_of([STRATEGIES[cls] for cls in classes])


def _startup_sequence() -> _S[list[m.PGMessage]]:
    body = st.lists(_one_of_classes(list(_STARTUP_SEQUENCE)), max_size=4)
    ending = st.none() | _one_of_classes(list(_STARTUP_ENDINGS))
    return st.builds(lambda b, e: b if e is None else [*b, e], body, ending)


#: Contexts in which a whole pipeline of messages can be decoded in order.
SEQUENCE_CONTEXTS: tuple[DecodingContext, ...] = (
    FRONTEND_STARTUP,
    FRONTEND_READY,
    BACKEND_READY,
    DecodingContext(FrontendMessageDecoder, ConnectionPhase.AUTHENTICATING_SASL_CONTINUE),
)


def sequences(ctx: DecodingContext, max_size: int = 8) -> _S[list[m.PGMessage]]:
    """A list of messages that ``ctx``'s decoder decodes one after the other."""
    if ctx == FRONTEND_STARTUP:
        return _startup_sequence()
    return st.lists(_one_of_classes(_classes_for(ctx)), max_size=max_size)


def any_message() -> _S[m.PGMessage]:
    """Any message of any class."""
    return st.one_of([STRATEGIES[cls] for cls in ALL_MESSAGE_CLASSES])
