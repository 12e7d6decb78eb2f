"""Routing of the admin (and of the app that mounts it): ids in URLs, and hosts that are no
host names.

**Ids.** Werkzeug's ``int`` converter matches ``\\d+``, which in Python's regular expressions
is any Unicode decimal digit, and ``int()`` converts them too: ``/jobs/`` then U+0661 (an
Arabic-Indic one) named job 1, and so did U+FF11 (a fullwidth one). An id in a URL is
``[0-9]+`` (:class:`DigitsConverter`); anything else matches no route (404). Still an
:class:`~werkzeug.routing.IntegerConverter`, so an OpenAPI document built from the routes
says ``integer``.

**Hosts.** A ``Host`` header that is not a valid host name (a label over 63 characters, an
empty label as in ``a..b``) makes werkzeug raise ``BadHost`` while it binds the URL map to the
request. Flask records that as the request's routing error, so the app's error handlers answer
it (400); Quart raises it while it builds the request context, before any handler can run, and
the server answers a text/plain 500 with a traceback at ERROR, on every route of the app.
:func:`refuse_bad_hosts` keeps the refusal for the moment the request is matched, where the
app's handlers turn it into a 400.
"""

from __future__ import annotations

from typing import Any, NoReturn

from quart import Quart
from quart.wrappers import BaseRequestWebsocket
from werkzeug.exceptions import BadHost
from werkzeug.routing import BaseConverter, IntegerConverter, Map, MapAdapter

#: The converter's name in ``app.url_map.converters`` (``/jobs/<qj_id:job_id>``).
ID_CONVERTER = "qj_id"
#: The converter of a queue name in a URL (``/queues/<qj_queue:queue>``).
QUEUE_CONVERTER = "qj_queue"
_REFUSES_BAD_HOSTS = "quart_jobs_refuses_bad_hosts"


class DigitsConverter(IntegerConverter):
    """A non-negative integer written in ASCII digits."""

    regex = r"[0-9]+"


class QueueNameConverter(BaseConverter):
    """A queue name as queues are named: 1 to 100 characters, no comma, no slash, no white
    space at either end (anything else matches no route: 404)."""

    regex = r"[^\s,/](?:[^,/]{0,98}[^\s,/])?"


class _RefusedHost(MapAdapter):
    """An adapter for a request whose host cannot be bound: matching it raises the refusal."""

    def __init__(self, url_map: Map, error: BadHost, request: BaseRequestWebsocket) -> None:
        super().__init__(
            url_map,
            "invalid",
            request.root_path,
            None,
            request.scheme,
            request.path,
            request.method,
        )
        self.error = error

    def match(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise BadHost("the Host header is not a valid host name") from self.error


def refuse_bad_hosts(app: Quart) -> None:
    """Make a ``Host`` header that is no host name a 400 answered by ``app``'s error handlers
    (for an app with JSON handlers, a JSON 400), not a 500. Calling it again changes nothing."""
    if app.extensions.get(_REFUSES_BAD_HOSTS):
        return
    app.extensions[_REFUSES_BAD_HOSTS] = True
    bind = app.create_url_adapter

    def create_url_adapter(request: BaseRequestWebsocket | None) -> MapAdapter | None:
        try:
            return bind(request)
        except BadHost as exc:
            if request is None:
                raise
            return _RefusedHost(app.url_map, exc, request)

    app.create_url_adapter = create_url_adapter  # type: ignore[method-assign]


def harden_routing(app: Quart) -> None:
    """Give ``app`` the ``qj_id`` converter (ids in ASCII digits: ``/orders/<qj_id:order_id>``)
    and answer a ``Host`` header that is no host name with a 400 (:func:`refuse_bad_hosts`).
    Call it before adding routes that use the converter; calling it again changes nothing."""
    app.url_map.converters[ID_CONVERTER] = DigitsConverter
    app.url_map.converters[QUEUE_CONVERTER] = QueueNameConverter
    refuse_bad_hosts(app)
