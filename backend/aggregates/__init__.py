"""The aggregates: interfaces and records, the SQLite store, the Delta store, the SQL warehouse reader."""
