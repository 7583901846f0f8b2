"""FAQ retrieval assistant: quotes the right vendor FAQ entry, with its provenance."""

__version__ = "0.1.0"
