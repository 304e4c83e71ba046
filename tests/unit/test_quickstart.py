"""The quick-start examples, run unchanged.

Each snippet is the quick-start's code verbatim (indentation restored), run
as a fresh ``__main__`` module; its printed output is checked against the
output the quick-start announces in its comments.  Where the quick-start
only says what is printed ("Raw wire protocol bytes"), the exact text is
derived by hand from the protocol documentation, not from pygwire.
"""

from __future__ import annotations

import warnings

import pytest

from pygwire import ConnectionPhase, FrontendMessageDecoder

VERIFY_INSTALLATION = '''\
"""Quickstart: Verify installation."""
from pygwire.messages import Query
query = Query(query_string="SELECT 1")
print(query.to_wire()) # Raw wire protocol bytes
'''

DECODE_SERVER_MESSAGES = '''\
"""Quickstart: Decoding server messages (client-side)."""
from pygwire import BackendMessageDecoder
from pygwire.messages import AuthenticationOk
decoder = BackendMessageDecoder()
# Feed raw bytes received from the server
decoder.feed(AuthenticationOk().to_wire())
# Iterate over decoded messages
for msg in decoder:
    print(f"Decoded: {type(msg).__name__}") # "Decoded: AuthenticationOk"
'''

DECODE_CLIENT_MESSAGES = '''\
"""Quickstart: Decoding client messages (server/proxy-side)."""
from pygwire import ConnectionPhase, FrontendMessageDecoder
from pygwire.messages import Query, StartupMessage
decoder = FrontendMessageDecoder()
# Simulate a client sending a startup message
startup = StartupMessage(params={"user": "postgres", "database": "mydb"})
decoder.feed(startup.to_wire())
for msg in decoder:
    if isinstance(msg, StartupMessage):
        print(f"Client connecting: user={msg.params.get('user')}")
        # Transition to authentication phase
        decoder.phase = ConnectionPhase.AUTHENTICATING
# After authentication completes, transition to READY
decoder.phase = ConnectionPhase.READY
# Now decode standard messages
query = Query(query_string="SELECT 1")
decoder.feed(query.to_wire())
for msg in decoder:
    if isinstance(msg, Query):
        print(f"Query: {msg.query_string}")
'''

ENCODING_MESSAGES = '''\
"""Quickstart: Encoding messages."""
from pygwire.messages import Query, StartupMessage, Terminate
# Simple query
query = Query(query_string="SELECT * FROM users WHERE id = 1")
print(f"Query wire bytes: {query.to_wire()!r}")
# Startup message
startup = StartupMessage(params={"user": "postgres", "database": "mydb"})
print(f"Startup wire bytes ({len(startup.to_wire())} bytes)")
# Graceful disconnect
terminate = Terminate()
print(f"Terminate wire bytes: {terminate.to_wire()!r}")
'''

TRACKING_CONNECTION_STATE = '''\
"""Quickstart: Tracking connection state."""
from pygwire import FrontendStateMachine, TransactionStatus
from pygwire.messages import (
    AuthenticationOk,
    BackendKeyData,
    ParameterStatus,
    Query,
    ReadyForQuery,
    StartupMessage,
)
sm = FrontendStateMachine()
# Track what you send
sm.send(StartupMessage(params={"user": "postgres", "database": "mydb"}))
print(sm.phase) # ConnectionPhase.AUTHENTICATING
# Track what you receive
sm.receive(AuthenticationOk())
sm.receive(ParameterStatus(name="server_version", value="15.0"))
sm.receive(BackendKeyData(process_id=1234, secret_key=b"\\x00\\x00\\x00\\x01"))
sm.receive(ReadyForQuery(status=TransactionStatus.IDLE))
print(sm.phase) # ConnectionPhase.READY
# Raises StateMachineError for messages invalid in the current phase
sm.send(Query(query_string="SELECT 1"))
print(sm.phase) # ConnectionPhase.SIMPLE_QUERY
'''

USING_CONNECTION = '''\
"""Quickstart: Using Connection (decoder + state machine together)."""
from pygwire import FrontendConnection, TransactionStatus
from pygwire.messages import (
    AuthenticationOk,
    BackendKeyData,
    ParameterStatus,
    ReadyForQuery,
    StartupMessage,
)
conn = FrontendConnection()
# send() validates via state machine and returns wire bytes
wire_bytes = conn.send(StartupMessage(params={"user": "postgres", "database": "mydb"}))
print(conn.phase) # ConnectionPhase.AUTHENTICATING
# receive() feeds bytes to decoder, validates each message, and yields them
server_data = (
    AuthenticationOk().to_wire()
    + ParameterStatus(name="server_version", value="15.0").to_wire()
    + BackendKeyData(process_id=1234, secret_key=b"\\x00\\x00\\x00\\x01").to_wire()
    + ReadyForQuery(status=TransactionStatus.IDLE).to_wire()
)
for msg in conn.receive(server_data):
    print(f"Received: {type(msg).__name__}")
print(conn.phase) # ConnectionPhase.READY
'''


def run_snippet(source: str, name: str) -> dict[str, object]:
    """Run ``source`` as a fresh ``__main__`` module; return its globals."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(source, f"<quickstart: {name}>", "exec"), namespace)
    return namespace


def lines(out: str) -> list[str]:
    return out.splitlines()


def test_verify_installation(capsys: pytest.CaptureFixture[str]) -> None:
    # The snippet prints a bytes object on purpose, which ``python -bb``
    # would turn into an error; that str(bytes) is the point here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BytesWarning)
        run_snippet(VERIFY_INSTALLATION, "verify installation")
    # Query: Byte1('Q'), Int32(4 + 9), String("SELECT 1"); 13 is "\r".
    expected = b"Q" + (4 + 9).to_bytes(4, "big") + b"SELECT 1\x00"
    out = capsys.readouterr().out
    assert out == f"{expected!r}\n"
    assert out == "b'Q\\x00\\x00\\x00\\rSELECT 1\\x00'\n"


def test_decoding_server_messages(capsys: pytest.CaptureFixture[str]) -> None:
    run_snippet(DECODE_SERVER_MESSAGES, "decoding server messages")
    assert lines(capsys.readouterr().out) == ["Decoded: AuthenticationOk"]


def test_decoding_client_messages(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_snippet(DECODE_CLIENT_MESSAGES, "decoding client messages")
    assert lines(capsys.readouterr().out) == [
        "Client connecting: user=postgres",
        "Query: SELECT 1",
    ]
    decoder = ns["decoder"]
    assert isinstance(decoder, FrontendMessageDecoder)
    assert decoder.phase is ConnectionPhase.READY
    assert decoder.buffered == 0


def test_encoding_messages(capsys: pytest.CaptureFixture[str]) -> None:
    run_snippet(ENCODING_MESSAGES, "encoding messages")
    query = b"SELECT * FROM users WHERE id = 1\x00"  # 33 bytes
    query_wire = b"Q" + (4 + len(query)).to_bytes(4, "big") + query
    # StartupMessage: Int32 length, Int32 version, "user" "postgres"
    # "database" "mydb", terminating zero byte.
    startup_len = 4 + 4 + len(b"user\x00postgres\x00database\x00mydb\x00") + 1
    assert startup_len == 37
    terminate_wire = b"X" + (4).to_bytes(4, "big")
    assert lines(capsys.readouterr().out) == [
        f"Query wire bytes: {query_wire!r}",
        f"Startup wire bytes ({startup_len} bytes)",
        f"Terminate wire bytes: {terminate_wire!r}",
    ]
    assert f"{query_wire!r}" == "b'Q\\x00\\x00\\x00%SELECT * FROM users WHERE id = 1\\x00'"
    assert f"{terminate_wire!r}" == "b'X\\x00\\x00\\x00\\x04'"


def test_tracking_connection_state(capsys: pytest.CaptureFixture[str]) -> None:
    run_snippet(TRACKING_CONNECTION_STATE, "tracking connection state")
    assert lines(capsys.readouterr().out) == [
        "ConnectionPhase.AUTHENTICATING",
        "ConnectionPhase.READY",
        "ConnectionPhase.SIMPLE_QUERY",
    ]


def test_using_connection(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_snippet(USING_CONNECTION, "using connection")
    assert lines(capsys.readouterr().out) == [
        "ConnectionPhase.AUTHENTICATING",
        "Received: AuthenticationOk",
        "Received: ParameterStatus",
        "Received: BackendKeyData",
        "Received: ReadyForQuery",
        "ConnectionPhase.READY",
    ]
    # send() returned the StartupMessage's wire form (3.0, two parameters).
    params = b"user\x00postgres\x00database\x00mydb\x00\x00"
    assert ns["wire_bytes"] == (4 + 4 + len(params)).to_bytes(4, "big") + (
        b"\x00\x03\x00\x00" + params
    )
