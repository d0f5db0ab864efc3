"""Fault-injection and bad-input tests (issue 7)."""
