"""Benchmarks: run with ``python -m bench``; each prints a table and its ratio to the raw library beneath."""
