"""The SQL both SQL backends run, each statement written once (see :mod:`.dialect`)."""
