"""The ``pygwire`` command: I/O layers built on the public API.

``pygwire proxy`` (:mod:`.proxy`) relays, validates, traces and records
PostgreSQL connections; ``pygwire decode`` prints a recording or a libpq
trace as a trace; :mod:`.html` draws a run as sequence diagrams.  Nothing
here is imported by the library itself.
"""
