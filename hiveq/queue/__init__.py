"""The core engine: keyspace, atomic scripts and their typed wrappers."""
