"""Test and demo support code: throwaway PostgreSQL servers (see harness.postgres)."""
