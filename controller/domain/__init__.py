"""Pure domain types and policies: medications, cabinet topology, users, patients and orders, the rules.

Nothing here does I/O; the store, the engine and the API build on these types.
"""
