"""The pill counter / counting robot wire contract: ``SPEC.md``, the message table (``messages.toml`` loaded by
``table``), the pure codec (``codec``) and golden vectors (``golden_vectors.toml``)."""
