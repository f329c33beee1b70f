"""The results store: its database, schema migrations and the SR archive."""
