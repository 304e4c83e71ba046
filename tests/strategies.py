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

from typing import NamedTuple, TypeVar

from hypothesis import strategies as st

from pygwire import (
    BackendMessageDecoder,
    ConnectionPhase,
    FrontendMessageDecoder,
    StartupRequestCode,
    TransactionStatus,
)
from pygwire import messages as m
from pygwire.codec import MessageDecoder
from pygwire.constants import MAX_CANCEL_KEY_LENGTH, PROTOCOL_V3_GREASE, ErrorField

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

field_descriptions = st.builds(
    m.FieldDescription,
    name=texts(),
    table_oid=uint32s,
    column_attr=int16s,
    type_oid=uint32s,
    type_size=int16s,
    type_modifier=int32s,
    format_code=format_codes,
)


def _lists(elements: st.SearchStrategy[T]) -> st.SearchStrategy[list[T]]:
    return st.lists(elements, max_size=MAX_LIST)


# -- one strategy per message class ----------------------------------------------

_S = st.SearchStrategy

STRATEGIES: dict[type[m.PGMessage], _S[m.PGMessage]] = {
    # startup-phase packets
    m.StartupMessage: st.builds(
        m.StartupMessage,
        params=st.dictionaries(names, texts(), max_size=MAX_LIST),
        protocol_version=protocol_versions,
    ),
    m.SSLRequest: st.just(m.SSLRequest()),
    m.GSSEncRequest: st.just(m.GSSEncRequest()),
    m.CancelRequest: st.builds(m.CancelRequest, process_id=int32s, secret_key=secret_keys),
    m.SSLResponse: st.sampled_from(list(m.SSLResponse)),
    m.GSSEncResponse: st.sampled_from(list(m.GSSEncResponse)),
    # 0x16 is the TLS handshake record type that announces direct SSL.
    m.DirectSSLHandshake: st.builds(
        lambda rest: m.DirectSSLHandshake(data=b"\x16" + rest), st.binary(max_size=64)
    ),
    # authentication
    m.AuthenticationOk: st.just(m.AuthenticationOk()),
    m.AuthenticationKerberosV5: st.just(m.AuthenticationKerberosV5()),
    m.AuthenticationCleartextPassword: st.just(m.AuthenticationCleartextPassword()),
    m.AuthenticationMD5Password: st.builds(
        m.AuthenticationMD5Password, salt=st.binary(min_size=4, max_size=4)
    ),
    m.AuthenticationSCMCredential: st.just(m.AuthenticationSCMCredential()),
    m.AuthenticationGSS: st.just(m.AuthenticationGSS()),
    m.AuthenticationSSPI: st.just(m.AuthenticationSSPI()),
    m.AuthenticationGSSContinue: st.builds(m.AuthenticationGSSContinue, data=blobs),
    m.AuthenticationSASL: st.builds(m.AuthenticationSASL, mechanisms=_lists(names)),
    m.AuthenticationSASLContinue: st.builds(m.AuthenticationSASLContinue, data=blobs),
    m.AuthenticationSASLFinal: st.builds(m.AuthenticationSASLFinal, data=blobs),
    m.PasswordMessage: st.builds(m.PasswordMessage, password=texts() | non_utf8_passwords),
    m.GSSResponse: st.builds(m.GSSResponse, data=blobs),
    m.SASLInitialResponse: st.builds(m.SASLInitialResponse, mechanism=texts(), data=values),
    m.SASLResponse: st.builds(m.SASLResponse, data=blobs),
    # simple query
    m.Query: st.builds(m.Query, query_string=texts(max_size=64)),
    m.RowDescription: st.builds(m.RowDescription, fields=_lists(field_descriptions)),
    m.DataRow: st.builds(m.DataRow, columns=st.lists(values, max_size=12)),
    m.CommandComplete: st.builds(m.CommandComplete, tag=texts()),
    m.EmptyQueryResponse: st.just(m.EmptyQueryResponse()),
    m.ReadyForQuery: st.builds(m.ReadyForQuery, status=st.sampled_from(list(TransactionStatus))),
    # extended query
    m.Parse: st.builds(
        m.Parse, statement=texts(), query=texts(max_size=64), param_types=_lists(uint32s)
    ),
    m.Bind: st.builds(
        m.Bind,
        portal=texts(),
        statement=texts(),
        param_formats=_lists(format_codes),
        param_values=_lists(values),
        result_formats=_lists(format_codes),
    ),
    m.Describe: st.builds(m.Describe, kind=st.sampled_from(["S", "P"]), name=texts()),
    m.Close: st.builds(m.Close, kind=st.sampled_from(["S", "P"]), name=texts()),
    m.Execute: st.builds(m.Execute, portal=texts(), max_rows=int32s),
    m.Sync: st.just(m.Sync()),
    m.Flush: st.just(m.Flush()),
    m.ParseComplete: st.just(m.ParseComplete()),
    m.BindComplete: st.just(m.BindComplete()),
    m.CloseComplete: st.just(m.CloseComplete()),
    m.NoData: st.just(m.NoData()),
    m.PortalSuspended: st.just(m.PortalSuspended()),
    m.ParameterDescription: st.builds(m.ParameterDescription, type_oids=_lists(uint32s)),
    # COPY
    m.CopyInResponse: st.builds(
        m.CopyInResponse, overall_format=int8s, col_formats=_lists(format_codes)
    ),
    m.CopyOutResponse: st.builds(
        m.CopyOutResponse, overall_format=int8s, col_formats=_lists(format_codes)
    ),
    m.CopyBothResponse: st.builds(
        m.CopyBothResponse, overall_format=int8s, col_formats=_lists(format_codes)
    ),
    m.CopyData: st.builds(m.CopyData, data=blobs),
    m.CopyDone: st.just(m.CopyDone()),
    m.CopyFail: st.builds(m.CopyFail, error_message=texts()),
    # errors and notices
    m.ErrorResponse: st.builds(
        m.ErrorResponse, fields=st.dictionaries(error_codes, texts(), max_size=8)
    ),
    m.NoticeResponse: st.builds(
        m.NoticeResponse, fields=st.dictionaries(error_codes, texts(), max_size=8)
    ),
    # asynchronous and status
    m.NotificationResponse: st.builds(
        m.NotificationResponse, process_id=int32s, channel=texts(), payload=texts()
    ),
    m.ParameterStatus: st.builds(m.ParameterStatus, name=texts(), value=texts()),
    m.BackendKeyData: st.builds(m.BackendKeyData, process_id=int32s, secret_key=secret_keys),
    m.NegotiateProtocolVersion: st.builds(
        m.NegotiateProtocolVersion,
        newest_minor=st.integers(0, 0xFFFF),
        unrecognized=_lists(texts()),
    ),
    # function calls, termination
    m.FunctionCall: st.builds(
        m.FunctionCall,
        function_oid=uint32s,
        arg_formats=_lists(format_codes),
        arguments=_lists(values),
        result_format=format_codes,
    ),
    m.FunctionCallResponse: st.builds(m.FunctionCallResponse, result=values),
    m.Terminate: st.just(m.Terminate()),
}

#: Abstract bases and helpers exported by pygwire.messages that are not
#: messages one can put on the wire.
_NOT_MESSAGES = {
    m.PGMessage,
    m.FrontendMessage,
    m.BackendMessage,
    m.CommonMessage,
    m.SpecialMessage,
    m.AuthenticationMessage,
}

#: Every concrete message class that pygwire.messages exports.
ALL_MESSAGE_CLASSES: tuple[type[m.PGMessage], ...] = tuple(
    obj
    for name in m.__all__
    if isinstance(obj := getattr(m, name), type)
    and issubclass(obj, m.PGMessage)
    and obj not in _NOT_MESSAGES
)


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

_SPECIAL_CONTEXTS: dict[type[m.PGMessage], tuple[DecodingContext, ...]] = {
    m.StartupMessage: (FRONTEND_STARTUP,),
    m.SSLRequest: (FRONTEND_STARTUP,),
    m.GSSEncRequest: (FRONTEND_STARTUP,),
    m.CancelRequest: (FRONTEND_STARTUP,),
    m.DirectSSLHandshake: (FRONTEND_STARTUP,),
    m.PasswordMessage: (
        DecodingContext(FrontendMessageDecoder, ConnectionPhase.AUTHENTICATING),
        # Outside authentication a 'p' message decodes as a password too.
        FRONTEND_READY,
    ),
    m.SASLInitialResponse: (
        DecodingContext(FrontendMessageDecoder, ConnectionPhase.AUTHENTICATING_SASL_INITIAL),
    ),
    m.SASLResponse: (
        DecodingContext(FrontendMessageDecoder, ConnectionPhase.AUTHENTICATING_SASL_CONTINUE),
    ),
    m.GSSResponse: (DecodingContext(FrontendMessageDecoder, ConnectionPhase.AUTHENTICATING_GSS),),
    m.SSLResponse: (DecodingContext(BackendMessageDecoder, ConnectionPhase.SSL_NEGOTIATION),),
    m.GSSEncResponse: (DecodingContext(BackendMessageDecoder, ConnectionPhase.GSS_NEGOTIATION),),
}


def contexts_for(cls: type[m.PGMessage]) -> tuple[DecodingContext, ...]:
    """Every (decoder, phase) that decodes a message of class ``cls``.

    CopyData and CopyDone travel both ways, so both decoders read them.
    """
    special = _SPECIAL_CONTEXTS.get(cls)
    if special is not None:
        return special
    if issubclass(cls, m.CommonMessage):
        return (FRONTEND_READY, BACKEND_READY)
    if issubclass(cls, m.FrontendMessage):
        return (FRONTEND_READY,)
    if issubclass(cls, m.BackendMessage):
        return (BACKEND_READY,)
    raise AssertionError(f"no decoding context known for {cls.__name__}")


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
