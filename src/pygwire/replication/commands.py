"""Replication commands as query strings, quoted so nothing can be injected.

On a connection opened with ``replication`` in the startup parameters
(``true`` for physical, ``database`` for logical replication) these
commands are sent as simple Query messages.  Each builder returns the
command text.  Every name is written as a double-quoted identifier and
every value as a single-quoted literal (quotes doubled, as the replication
command scanner reads them, without backslash escapes), so a name or value
can never end the token it sits in.  What a server would refuse anyway is
refused here first with :class:`~pygwire.exceptions.EncodingError`, naming
the command and the argument: a NUL byte (it would end the query string),
an empty identifier, a slot name outside PostgreSQL's ``[a-z0-9_]{1,63}``,
a double quote in a plugin or option name (PostgreSQL 15's scanner cannot
read one), an option the chosen protocol version does not have.
Publication names travel inside a literal and may hold any character.

Options left at None are not sent, so the server's defaults apply and
older servers are not given options they do not know.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

from ..exceptions import EncodingError
from .pgoutput import PGOUTPUT_MAX_VERSION
from .values import LSN, ReplicationValueError

__all__ = [
    "base_backup",
    "create_logical_replication_slot",
    "create_physical_replication_slot",
    "drop_replication_slot",
    "identify_system",
    "pgoutput_options",
    "quote_identifier",
    "quote_literal",
    "read_replication_slot",
    "start_logical_replication",
    "start_physical_replication",
    "timeline_history",
]

_SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")

OptionValue = str | int | bool | None


def quote_identifier(name: str, *, command: str = "command", field: str = "name") -> str:
    """``name`` as a double-quoted identifier (``"`` doubled)."""
    if not isinstance(name, str):
        raise EncodingError(command, field, f"expected str, got {type(name).__name__}")
    if not name:
        raise EncodingError(command, field, "an identifier cannot be empty")
    if "\0" in name:
        raise EncodingError(command, field, "contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str, *, command: str = "command", field: str = "value") -> str:
    """``value`` as a single-quoted literal (``'`` doubled; backslashes are
    ordinary characters, as with standard_conforming_strings)."""
    if not isinstance(value, str):
        raise EncodingError(command, field, f"expected str, got {type(value).__name__}")
    if "\0" in value:
        raise EncodingError(command, field, "contains a NUL byte")
    return "'" + value.replace("'", "''") + "'"


def _name(name: str, command: str, field: str) -> str:
    """A plugin or option name as the replication command scanner reads it.

    A double quote inside is refused: PostgreSQL 18 reads a doubled one
    as a quote, but PostgreSQL 15 cannot parse it at all (a syntax error),
    and no plugin or option name needs one.
    """
    if isinstance(name, str) and '"' in name:
        raise EncodingError(
            command, field, "a double quote in a name is not portable across servers"
        )
    return quote_identifier(name, command=command, field=field)


def _slot(name: str, command: str) -> str:
    if not isinstance(name, str) or not _SLOT_NAME.fullmatch(name):
        raise EncodingError(
            command,
            "slot_name",
            f"{name!r} is not a slot name: 1 to 63 lower case letters, digits and underscores",
        )
    return quote_identifier(name, command=command, field="slot_name")


def _lsn(value: LSN | int | str, command: str, field: str) -> str:
    try:
        return str(value if isinstance(value, LSN) else LSN(value))
    except ReplicationValueError as exc:
        raise EncodingError(command, field, str(exc)) from None


def _timeline(value: int, command: str) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 0xFFFFFFFF:
        raise EncodingError(command, "timeline", f"{value!r} is not a timeline ID (1..2**32-1)")
    return str(value)


def _bool(value: object, command: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise EncodingError(command, field, f"expected a boolean, got {value!r}")
    return value


def _generic(options: Iterable[tuple[str, str]]) -> str:
    """The parenthesised ``NAME value, ...`` list, or nothing."""
    body = ", ".join(f"{name} {value}" for name, value in options)
    return f" ({body})" if body else ""


def identify_system() -> str:
    """``IDENTIFY_SYSTEM``: system id, timeline, current WAL flush location
    and database, in one row."""
    return "IDENTIFY_SYSTEM"


def timeline_history(timeline: int) -> str:
    """``TIMELINE_HISTORY tli``: the timeline's history file."""
    return f"TIMELINE_HISTORY {_timeline(timeline, 'TIMELINE_HISTORY')}"


def read_replication_slot(slot_name: str) -> str:
    """``READ_REPLICATION_SLOT``: a physical slot's type, restart LSN and
    timeline (PostgreSQL 15 and later)."""
    return f"READ_REPLICATION_SLOT {_slot(slot_name, 'READ_REPLICATION_SLOT')}"


def drop_replication_slot(slot_name: str, *, wait: bool = False) -> str:
    """``DROP_REPLICATION_SLOT``; with ``wait``, wait for an active slot to
    become inactive instead of failing."""
    cmd = "DROP_REPLICATION_SLOT"
    text = f"{cmd} {_slot(slot_name, cmd)}"
    return text + " WAIT" if _bool(wait, cmd, "wait") else text


def create_physical_replication_slot(
    slot_name: str, *, temporary: bool = False, reserve_wal: bool | None = None
) -> str:
    """``CREATE_REPLICATION_SLOT ... PHYSICAL``; ``reserve_wal`` reserves
    WAL at once instead of at the first connection."""
    cmd = "CREATE_REPLICATION_SLOT"
    text = f"{cmd} {_slot(slot_name, cmd)}"
    if _bool(temporary, cmd, "temporary"):
        text += " TEMPORARY"
    options = []
    if reserve_wal is not None:
        options.append(("RESERVE_WAL", _word(_bool(reserve_wal, cmd, "reserve_wal"))))
    return text + " PHYSICAL" + _generic(options)


def create_logical_replication_slot(
    slot_name: str,
    plugin: str,
    *,
    temporary: bool = False,
    two_phase: bool | None = None,
    snapshot: Literal["export", "use", "nothing"] | None = None,
    failover: bool | None = None,
) -> str:
    """``CREATE_REPLICATION_SLOT ... LOGICAL plugin``.

    ``two_phase`` lets the slot decode prepared transactions at PREPARE;
    ``snapshot`` chooses what happens to the initial snapshot; ``failover``
    (PostgreSQL 17 and later) syncs the slot to standbys.
    """
    cmd = "CREATE_REPLICATION_SLOT"
    text = f"{cmd} {_slot(slot_name, cmd)}"
    if _bool(temporary, cmd, "temporary"):
        text += " TEMPORARY"
    text += " LOGICAL " + _name(plugin, cmd, "plugin")
    options = []
    if two_phase is not None:
        options.append(("TWO_PHASE", _word(_bool(two_phase, cmd, "two_phase"))))
    if snapshot is not None:
        chosen = _choice(snapshot, ("export", "use", "nothing"), cmd, "snapshot")
        options.append(("SNAPSHOT", quote_literal(chosen)))
    if failover is not None:
        options.append(("FAILOVER", _word(_bool(failover, cmd, "failover"))))
    return text + _generic(options)


def _choice(value: object, choices: tuple[str, ...], command: str, field: str) -> str:
    # Only a str is compared: bytes against str would be a BytesWarning.
    if not isinstance(value, str) or value not in choices:
        raise EncodingError(command, field, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _word(flag: bool) -> str:
    return "true" if flag else "false"


def start_physical_replication(
    start_lsn: LSN | int | str, *, slot_name: str | None = None, timeline: int | None = None
) -> str:
    """``START_REPLICATION [SLOT s] PHYSICAL lsn [TIMELINE tli]``."""
    cmd = "START_REPLICATION"
    text = cmd
    if slot_name is not None:
        text += f" SLOT {_slot(slot_name, cmd)}"
    text += f" PHYSICAL {_lsn(start_lsn, cmd, 'start_lsn')}"
    if timeline is not None:
        text += f" TIMELINE {_timeline(timeline, cmd)}"
    return text


def start_logical_replication(
    slot_name: str,
    start_lsn: LSN | int | str = 0,
    options: Mapping[str, OptionValue] | None = None,
) -> str:
    """``START_REPLICATION SLOT s LOGICAL lsn (option 'value', ...)``.

    ``options`` go to the output plugin: each name is quoted as an
    identifier, each value as a literal (booleans as ``'true'`` /
    ``'false'``, integers in decimal); None sends the name alone.  For
    ``pgoutput`` build them with :func:`pgoutput_options`.
    """
    cmd = "START_REPLICATION"
    text = f"{cmd} SLOT {_slot(slot_name, cmd)} LOGICAL {_lsn(start_lsn, cmd, 'start_lsn')}"
    if options is not None and not isinstance(options, Mapping):
        raise EncodingError(cmd, "options", f"expected a mapping, got {type(options).__name__}")
    parts = []
    for name, value in (options or {}).items():
        field = f"options[{name!r}]"
        part = _name(name, cmd, field)
        if value is not None:
            part += " " + quote_literal(_option_text(value, cmd, field), command=cmd, field=field)
        parts.append(part)
    return text + (f" ({', '.join(parts)})" if parts else "")


def _option_text(value: OptionValue, command: str, field: str) -> str:
    if isinstance(value, bool):
        return _word(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise EncodingError(command, field, f"expected str, int or bool, got {type(value).__name__}")


def pgoutput_options(
    proto_version: int,
    publication_names: Iterable[str],
    *,
    binary: bool | None = None,
    messages: bool | None = None,
    streaming: bool | Literal["off", "on", "parallel"] | None = None,
    two_phase: bool | None = None,
    origin: Literal["any", "none"] | None = None,
) -> dict[str, OptionValue]:
    """The ``pgoutput`` options for :func:`start_logical_replication`.

    Checks what the documentation requires: ``proto_version`` 1 to 4; at
    least one publication; ``streaming`` on needs version 2 and
    ``parallel`` version 4; ``two_phase`` needs version 3.  Publication
    names are quoted as identifiers inside the comma-separated list, as the
    server splits it.  ``origin`` needs PostgreSQL 16.
    """
    cmd = "START_REPLICATION"
    if (
        not isinstance(proto_version, int)
        or isinstance(proto_version, bool)
        or not 1 <= proto_version <= PGOUTPUT_MAX_VERSION
    ):
        raise EncodingError(
            cmd, "proto_version", f"{proto_version!r} is not one of 1..{PGOUTPUT_MAX_VERSION}"
        )
    if isinstance(publication_names, str) or not isinstance(publication_names, Iterable):
        raise EncodingError(cmd, "publication_names", "give a list of names, not one string")
    names = [quote_identifier(n, command=cmd, field="publication_names") for n in publication_names]
    if not names:
        raise EncodingError(cmd, "publication_names", "at least one publication is required")
    options: dict[str, OptionValue] = {
        "proto_version": str(proto_version),
        "publication_names": ",".join(names),
    }
    if binary is not None:
        options["binary"] = _bool(binary, cmd, "binary")
    if messages is not None:
        options["messages"] = _bool(messages, cmd, "messages")
    if streaming is not None:
        mode = _choice(
            ("on" if streaming else "off") if isinstance(streaming, bool) else streaming,
            ("off", "on", "parallel"),
            cmd,
            "streaming",
        )
        if mode == "on" and proto_version < 2:
            raise EncodingError(cmd, "streaming", "streaming needs proto_version 2 or later")
        if mode == "parallel" and proto_version < 4:
            raise EncodingError(cmd, "streaming", "parallel streaming needs proto_version 4")
        options["streaming"] = mode
    if two_phase is not None:
        if _bool(two_phase, cmd, "two_phase") and proto_version < 3:
            raise EncodingError(cmd, "two_phase", "two_phase needs proto_version 3 or later")
        options["two_phase"] = two_phase
    if origin is not None:
        options["origin"] = _choice(origin, ("any", "none"), cmd, "origin")
    return options


def base_backup(
    *,
    label: str | None = None,
    target: Literal["client", "server", "blackhole"] | None = None,
    target_detail: str | None = None,
    progress: bool | None = None,
    checkpoint: Literal["fast", "spread"] | None = None,
    wal: bool | None = None,
    wait: bool | None = None,
    compression: str | None = None,
    compression_detail: str | int | None = None,
    max_rate: int | None = None,
    tablespace_map: bool | None = None,
    verify_checksums: bool | None = None,
    manifest: Literal["yes", "no", "force-encode"] | None = None,
    manifest_checksums: str | None = None,
    incremental: bool = False,
) -> str:
    """``BASE_BACKUP (option, ...)`` in the syntax of PostgreSQL 15 and later.

    ``max_rate`` is in kilobytes per second: 0 or 32 to 1048576.
    ``incremental`` (PostgreSQL 17) needs an UPLOAD_MANIFEST first.
    """
    cmd = "BASE_BACKUP"
    options: list[tuple[str, str]] = []

    def text(name: str, value: str | None) -> None:
        if value is not None:
            options.append((name, quote_literal(value, command=cmd, field=name.lower())))

    def flag(name: str, value: bool | None) -> None:
        if value is not None:
            options.append((name, _word(_bool(value, cmd, name.lower()))))

    text("LABEL", label)
    if target is not None:
        text("TARGET", _choice(target, ("client", "server", "blackhole"), cmd, "target"))
    text("TARGET_DETAIL", target_detail)
    flag("PROGRESS", progress)
    if checkpoint is not None:
        text("CHECKPOINT", _choice(checkpoint, ("fast", "spread"), cmd, "checkpoint"))
    flag("WAL", wal)
    flag("WAIT", wait)
    text("COMPRESSION", compression)
    if isinstance(compression_detail, bool):
        raise EncodingError(cmd, "compression_detail", "expected a level or a detail string")
    if isinstance(compression_detail, int):
        options.append(("COMPRESSION_DETAIL", str(compression_detail)))
    else:
        text("COMPRESSION_DETAIL", compression_detail)
    if max_rate is not None:
        if (
            not isinstance(max_rate, int)
            or isinstance(max_rate, bool)
            or not (max_rate == 0 or 32 <= max_rate <= 1048576)
        ):
            raise EncodingError(cmd, "max_rate", f"{max_rate!r} is not 0 or 32..1048576 kB/s")
        options.append(("MAX_RATE", str(max_rate)))
    flag("TABLESPACE_MAP", tablespace_map)
    flag("VERIFY_CHECKSUMS", verify_checksums)
    if manifest is not None:
        text("MANIFEST", _choice(manifest, ("yes", "no", "force-encode"), cmd, "manifest"))
    text("MANIFEST_CHECKSUMS", manifest_checksums)
    if _bool(incremental, cmd, "incremental"):
        options.append(("INCREMENTAL", ""))
    body = ", ".join(f"{n} {v}".rstrip() for n, v in options)
    return f"{cmd} ({body})" if body else cmd
