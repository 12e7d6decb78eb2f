"""The service's Quart class: a ``Host`` header that is not a valid host name (a label over
63 characters, an empty label as in ``a..b``) is a 400 with the JSON error body.

Werkzeug refuses such a host with ``BadHost`` while it binds the URL map to the request.
Flask records that as the request's routing error, so the app's error handlers answer it;
Quart raises it while it builds the request context, before any handler can run, and the
server answers a text/plain 500 with a traceback at ERROR. Here the refusal is kept for the
moment the request is matched, where the app's ``HTTPException`` handler turns it into a 400.
"""

from __future__ import annotations

from typing import Any, NoReturn

from quart import Quart
from quart.wrappers import BaseRequestWebsocket
from werkzeug.exceptions import BadHost
from werkzeug.routing import Map, MapAdapter


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


class ServiceQuart(Quart):
    def create_url_adapter(self, request: BaseRequestWebsocket | None) -> MapAdapter | None:
        try:
            return super().create_url_adapter(request)
        except BadHost as exc:
            if request is None:
                raise
            return _RefusedHost(self.url_map, exc, request)
