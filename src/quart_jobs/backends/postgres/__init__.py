"""The PostgreSQL backend: jobs shared by any number of processes on any number of machines.

Needs the ``postgres`` extra (psycopg); :func:`quart_jobs.backends.backend_from_url` imports
this package only for a ``postgresql://`` URL.
"""
