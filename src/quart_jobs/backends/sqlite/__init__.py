"""The SQLite backend: jobs in one file (WAL), written by one thread with group commit."""
