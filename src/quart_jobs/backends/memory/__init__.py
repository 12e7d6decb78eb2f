"""The in-memory reference backend: the contract in plain Python, for tests and examples."""
