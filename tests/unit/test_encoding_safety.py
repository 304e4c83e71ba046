"""The encoder refuses what the wire cannot carry, before producing any byte.

A NUL inside a C string would end it early and let the rest be read as
further fields or messages (injection); a count over 65535 would wrap the
Int16; an integer out of its wire range would be silently truncated; a value
of the wrong type has no defined encoding.  Each is refused with
:class:`pygwire.EncodingError`, which names the message and the field, and
``encode_into`` leaves the caller's buffer exactly as it was.
"""

from __future__ import annotations

import dataclasses
import mmap
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget import examples
from pygwire import EncodingError, PygwireError
from pygwire import messages as m
from pygwire.constants import MAX_MESSAGE_LENGTH
from strategies import ALL_MESSAGE_CLASSES, STRATEGIES

PREFIX = b"Q\x00\x00\x00\x0dSELECT 1\x00"


def bad(value: object) -> Any:
    """Pass a value of the wrong type past the type checker on purpose."""
    return value


def assert_refused(msg: m.PGMessage, field: str) -> EncodingError:
    """``msg`` cannot be encoded; the error names ``field``; no byte escapes."""
    with pytest.raises(EncodingError) as info:
        msg.to_wire()
    err = info.value
    assert err.message == type(msg).__name__
    assert err.field == field
    assert f"{err.message}.{err.field}" in str(err)
    buf = bytearray(PREFIX)
    with pytest.raises(EncodingError):
        msg.encode_into(buf)
    assert buf == PREFIX
    with pytest.raises(EncodingError):
        m.encode_messages([m.Sync(), msg, m.Sync()])
    return err


def test_encoding_error_types() -> None:
    assert issubclass(EncodingError, PygwireError)
    # Bad arguments from the caller: a ValueError, as Python code expects.
    assert issubclass(EncodingError, ValueError)


# -- NUL inside string fields ------------------------------------------------------

NUL = "a\x00b"

NUL_CASES: list[tuple[m.PGMessage, str]] = [
    (m.Query(query_string="SELECT 1;\x00DROP TABLE t"), "query_string"),
    (m.Parse(statement=NUL), "statement"),
    (m.Parse(query=NUL), "query"),
    (m.Bind(portal=NUL), "portal"),
    (m.Bind(statement=NUL), "statement"),
    (m.Describe(kind="S", name=NUL), "name"),
    (m.Close(kind="P", name=NUL), "name"),
    (m.Execute(portal=NUL), "portal"),
    (m.StartupMessage(params={"us\x00er": "x"}), "params"),
    (m.StartupMessage(params={"user": "x\x00database\x00postgres"}), "params"),
    (m.ErrorResponse(fields={"M": NUL}), "fields"),
    (m.NoticeResponse(fields={"S": NUL}), "fields"),
    (m.NotificationResponse(channel=NUL), "channel"),
    (m.NotificationResponse(payload=NUL), "payload"),
    (m.SASLInitialResponse(mechanism="SCRAM\x00"), "mechanism"),
    (m.AuthenticationSASL(mechanisms=["SCRAM-SHA-256", NUL]), "mechanisms"),
    (m.PasswordMessage(password="pass\x00word"), "password"),
    (m.PasswordMessage(password=b"pass\x00word"), "password"),
    (m.ParameterStatus(name=NUL), "name"),
    (m.ParameterStatus(value=NUL), "value"),
    (m.CommandComplete(tag=NUL), "tag"),
    (m.CopyFail(error_message=NUL), "error_message"),
    (m.RowDescription(fields=[m.FieldDescription(name=NUL)]), "fields.name"),
    (m.NegotiateProtocolVersion(unrecognized=["_pq_.a", NUL]), "unrecognized"),
]


@pytest.mark.parametrize(("msg", "field"), NUL_CASES, ids=lambda x: repr(x)[:40])
def test_nul_inside_string_refused(msg: m.PGMessage, field: str) -> None:
    err = assert_refused(msg, field)
    assert "NUL" in err.reason


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (m.Query(query_string="\ud800"), "query_string"),
        (m.Parse(statement="\udfff"), "statement"),
        (m.StartupMessage(params={"user": "\ud800"}), "params"),
        (m.ErrorResponse(fields={"M": "\ud800"}), "fields"),
    ],
    ids=["Query", "Parse", "StartupMessage", "ErrorResponse"],
)
def test_string_not_encodable_as_utf8_refused(msg: m.PGMessage, field: str) -> None:
    assert_refused(msg, field)


# -- list terminators and fixed formats -------------------------------------------


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (m.StartupMessage(params={"": "x"}), "params"),
        (m.AuthenticationSASL(mechanisms=["SCRAM-SHA-256", ""]), "mechanisms"),
        (m.ErrorResponse(fields={"": "x"}), "fields"),
        (m.ErrorResponse(fields={"MM": "x"}), "fields"),
        (m.ErrorResponse(fields={"\x00": "x"}), "fields"),
        (m.NoticeResponse(fields={"\u20ac": "x"}), "fields"),  # a code is one byte
        (m.ReadyForQuery(status=bad("X")), "status"),
        (m.Describe(kind="X"), "kind"),
        (m.Close(kind=""), "kind"),
        (m.CancelRequest(secret_key=b"abc"), "secret_key"),
        (m.CancelRequest(secret_key=bytes(257)), "secret_key"),
        (m.BackendKeyData(secret_key=b"abc"), "secret_key"),
        (m.BackendKeyData(secret_key=bytes(257)), "secret_key"),
        (m.AuthenticationMD5Password(salt=b"abc"), "salt"),
        (m.AuthenticationMD5Password(salt=b"abcde"), "salt"),
    ],
    ids=lambda x: repr(x)[:40],
)
def test_unrepresentable_value_refused(msg: m.PGMessage, field: str) -> None:
    assert_refused(msg, field)


# -- Int16 counts ------------------------------------------------------------------

TOO_MANY = 65536

COUNT_CASES: list[tuple[m.PGMessage, str]] = [
    (m.Parse(param_types=[0] * TOO_MANY), "param_types"),
    (m.Bind(param_formats=[0] * TOO_MANY), "param_formats"),
    (m.Bind(param_values=[None] * TOO_MANY), "param_values"),
    (m.Bind(result_formats=[0] * TOO_MANY), "result_formats"),
    (m.DataRow(columns=[None] * TOO_MANY), "columns"),
    (m.RowDescription(fields=[m.FieldDescription()] * TOO_MANY), "fields"),
    (m.ParameterDescription(type_oids=[0] * TOO_MANY), "type_oids"),
    (m.FunctionCall(arg_formats=[0] * TOO_MANY), "arg_formats"),
    (m.FunctionCall(arguments=[None] * TOO_MANY), "arguments"),
    (m.CopyInResponse(col_formats=[0] * TOO_MANY), "col_formats"),
    (m.CopyOutResponse(col_formats=[0] * TOO_MANY), "col_formats"),
    (m.CopyBothResponse(col_formats=[0] * TOO_MANY), "col_formats"),
]


@pytest.mark.parametrize(("msg", "field"), COUNT_CASES, ids=lambda x: type(x).__name__)
def test_count_over_65535_refused(msg: m.PGMessage, field: str) -> None:
    err = assert_refused(msg, field)
    assert "65535" in err.reason


@pytest.mark.parametrize(
    "msg",
    [
        m.DataRow(columns=[None] * 65535),
        m.Parse(param_types=list(range(65535))),
        m.Bind(param_values=[b""] * 65535, param_formats=[1] * 65535),
    ],
    ids=["DataRow", "Parse", "Bind"],
)
def test_count_of_65535_is_fine(msg: m.PGMessage) -> None:
    # PostgreSQL reads these counts as unsigned: 65535 is the real maximum.
    wire = msg.to_wire()
    assert type(msg).decode(wire[5:]) == msg


# -- sizes ---------------------------------------------------------------------------


def test_value_longer_than_a_message_refused() -> None:
    # An anonymous mapping gives a value of MAX_MESSAGE_LENGTH + 1 bytes
    # without allocating them; the length check comes before any copy.
    with mmap.mmap(-1, MAX_MESSAGE_LENGTH + 1) as mapping, memoryview(mapping) as huge:
        err = assert_refused(m.DataRow(columns=[b"x", bad(huge)]), "columns")
        assert "exceed" in err.reason
        assert_refused(m.Bind(param_values=[bad(huge)]), "param_values")
        assert_refused(m.FunctionCallResponse(result=bad(huge)), "result")


# -- integer ranges ------------------------------------------------------------------

RANGE_CASES: list[tuple[m.PGMessage, str]] = [
    (m.BackendKeyData(process_id=2**31), "process_id"),
    (m.CancelRequest(process_id=2**31), "process_id"),
    (m.NotificationResponse(process_id=-(2**31) - 1), "process_id"),
    (m.Parse(param_types=[-1]), "param_types"),
    (m.Parse(param_types=[2**32]), "param_types"),
    (m.ParameterDescription(type_oids=[-1]), "type_oids"),
    (m.FunctionCall(function_oid=-1), "function_oid"),
    (m.FunctionCall(function_oid=2**32), "function_oid"),
    (m.FunctionCall(result_format=2**15), "result_format"),
    (m.FunctionCall(arg_formats=[-(2**15) - 1]), "arg_formats"),
    (m.Bind(param_formats=[2**15]), "param_formats"),
    (m.Bind(result_formats=[2**15]), "result_formats"),
    (m.Execute(max_rows=2**31), "max_rows"),
    (m.Execute(max_rows=-(2**31) - 1), "max_rows"),
    (m.CopyInResponse(overall_format=128), "overall_format"),
    (m.CopyOutResponse(overall_format=255), "overall_format"),
    (m.CopyBothResponse(overall_format=-129), "overall_format"),
    (m.CopyInResponse(col_formats=[2**15]), "col_formats"),
    (m.StartupMessage(protocol_version=-1), "protocol_version"),
    (m.StartupMessage(protocol_version=2**32), "protocol_version"),
    (m.RowDescription(fields=[m.FieldDescription(table_oid=-1)]), "fields.table_oid"),
    (m.RowDescription(fields=[m.FieldDescription(type_oid=2**32)]), "fields.type_oid"),
    (m.RowDescription(fields=[m.FieldDescription(column_attr=2**15)]), "fields.column_attr"),
    (m.RowDescription(fields=[m.FieldDescription(type_size=-(2**15) - 1)]), "fields.type_size"),
    (m.RowDescription(fields=[m.FieldDescription(type_modifier=2**31)]), "fields.type_modifier"),
    (m.RowDescription(fields=[m.FieldDescription(format_code=2**15)]), "fields.format_code"),
    (m.NegotiateProtocolVersion(newest_minor=-1), "newest_minor"),
    (m.NegotiateProtocolVersion(newest_minor=2**31), "newest_minor"),
]


@pytest.mark.parametrize(("msg", "field"), RANGE_CASES, ids=lambda x: repr(x)[:40])
def test_integer_out_of_range_refused(msg: m.PGMessage, field: str) -> None:
    assert_refused(msg, field)


@pytest.mark.parametrize("overall_format", [-128, 0, 1, 127])
def test_copy_overall_format_round_trips_over_the_int8_range(overall_format: int) -> None:
    msg = m.CopyOutResponse(overall_format=overall_format, col_formats=[0, 1])
    assert m.CopyOutResponse.decode(msg.to_wire()[5:]) == msg


# -- wrong types ---------------------------------------------------------------------

TYPE_CASES: list[tuple[m.PGMessage, str]] = [
    # str where bytes are expected
    (m.CopyData(data=bad("abc")), "data"),
    (m.GSSResponse(data=bad("abc")), "data"),
    (m.SASLResponse(data=bad("abc")), "data"),
    (m.SASLInitialResponse(mechanism="SCRAM-SHA-256", data=bad("abc")), "data"),
    (m.AuthenticationSASLContinue(data=bad("abc")), "data"),
    (m.AuthenticationSASLFinal(data=bad("abc")), "data"),
    (m.AuthenticationGSSContinue(data=bad("abc")), "data"),
    (m.AuthenticationMD5Password(salt=bad("abcd")), "salt"),
    (m.BackendKeyData(secret_key=bad("abcd")), "secret_key"),
    (m.CancelRequest(secret_key=bad("abcd")), "secret_key"),
    (m.DataRow(columns=[b"ok", bad("abc")]), "columns"),
    (m.Bind(param_values=[bad("abc")]), "param_values"),
    (m.FunctionCall(arguments=[bad("abc")]), "arguments"),
    (m.FunctionCallResponse(result=bad("abc")), "result"),
    (m.DirectSSLHandshake(data=bad("\x16abc")), "data"),
    # bytes where a str is compared with fixed values (under -bb a bytes/str
    # comparison raises BytesWarning, so the type must be checked first)
    (m.Describe(kind=bad(b"S")), "kind"),
    (m.Close(kind=bad(b"P")), "kind"),
    (m.ReadyForQuery(status=bad(b"I")), "status"),
    (m.ReadyForQuery(status=bad(["I"])), "status"),
    (m.ErrorResponse(fields={bad(b"M"): "x"}), "fields"),
    (m.StartupMessage(params={bad(b""): "x"}), "params"),
    (m.AuthenticationSASL(mechanisms=[bad(b"")]), "mechanisms"),
    # something else where str is expected
    (m.Query(query_string=bad(42)), "query_string"),
    (m.Parse(statement=bad(None)), "statement"),
    (m.ParameterStatus(name="a", value=bad(1.5)), "value"),
    (m.StartupMessage(params={"user": bad(7)}), "params"),
    # something else where an integer is expected
    (m.Execute(max_rows=bad("1")), "max_rows"),
    (m.Execute(max_rows=bad(1.0)), "max_rows"),
    (m.BackendKeyData(process_id=bad(None)), "process_id"),
    (m.CopyInResponse(overall_format=bad("0")), "overall_format"),
    (m.Parse(param_types=[bad("23")]), "param_types"),
    (m.RowDescription(fields=[m.FieldDescription(type_oid=bad(b"\x17"))]), "fields.type_oid"),
]


@pytest.mark.parametrize(("msg", "field"), TYPE_CASES, ids=lambda x: repr(x)[:40])
def test_wrong_type_refused(msg: m.PGMessage, field: str) -> None:
    assert_refused(msg, field)


# -- the buffer is left unchanged, whatever fails ------------------------------------

#: Values that are wrong for most fields in some way.
BAD_VALUES = st.sampled_from(
    [
        "a\x00b",
        b"a\x00b",
        "\ud800",
        -1,
        2**15,
        2**31,
        2**32,
        -(2**63),
        "x",
        b"x",
        None,
        1.5,
        [2**40],
        ["a\x00"],
        [None, "x"],
        {"": "x"},
        {"\x00": "x"},
        {"ab": "x"},
    ]
)


@pytest.mark.parametrize(
    "cls",
    [c for c in ALL_MESSAGE_CLASSES if dataclasses.is_dataclass(c)],
    ids=lambda c: c.__name__,
)
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_failed_encode_leaves_buffer_unchanged(cls: type[m.PGMessage], data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[cls], label="valid message")
    assert dataclasses.is_dataclass(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    if names:
        name = data.draw(st.sampled_from(names), label="field")
        setattr(msg, name, data.draw(BAD_VALUES, label="value"))
    prefix = data.draw(st.binary(max_size=16), label="prefix")
    buf = bytearray(prefix)
    try:
        msg.encode_into(buf)
    except (EncodingError, TypeError, AttributeError):
        # TypeError / AttributeError: a container of the wrong kind (an int
        # for a list, ...), which Python itself refuses; what matters here
        # is that no partial message is left behind.
        assert buf == prefix
    else:
        assert buf == prefix + msg.to_wire()
