"""Benchmarks: scripts run by hand, never by CI (see README.md here)."""
