"""A URL converter for ids: ASCII digits only.

Werkzeug's ``int`` converter matches ``\\d+``, which in Python's regular expressions is any
Unicode decimal digit, and ``int()`` converts them too: ``/jobs/`` then U+0661 (an
Arabic-Indic one) named job 1, and so did U+FF11 (a fullwidth one). An id in a URL is
``[0-9]+``; anything else matches no route (404). Still an
:class:`~werkzeug.routing.IntegerConverter`, so an OpenAPI document built from the routes
says ``integer``.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

#: The converter's name in ``app.url_map.converters`` (``/jobs/<qj_id:job_id>``).
ID_CONVERTER = "qj_id"


class DigitsConverter(IntegerConverter):
    """A non-negative integer written in ASCII digits."""

    regex = r"[0-9]+"
