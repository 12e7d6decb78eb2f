"""The dashboard page, its login and logout, and its static files (served from the package).

The page is plain HTML, CSS and one script: no build step, no CDN. Its Content-Security-Policy
allows only this origin's own script and style, so an error message or task argument shown on
the page can never run as code (the script also inserts text only through ``textContent``).
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, render_template, request, send_from_directory
from quart_schema import hide

from .auth import COOKIE_NAME, CSRF_HEADER, AdminAuth, AdminError, check_same_origin

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATE_DIR = "quart_jobs_admin"

#: Sent with every admin response (pages and JSON): only this origin's own script and style,
#: no framing, no sniffing, no referrer beyond this origin.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
}


def see_other(location: str) -> Response:
    return Response("", status=303, headers={"Location": location})


def add_page_routes(bp: Blueprint, auth: AdminAuth, prefix: str) -> None:
    """Mount ``/`` (dashboard or login form), ``/login``, ``/logout`` and ``/static/…``."""
    home = prefix.rstrip("/") + "/"

    async def login_page(
        message: str | None, status: int, headers: dict[str, str] | None = None
    ) -> Response:
        html = await render_template(f"{TEMPLATE_DIR}/login.html", home=home, message=message)
        return Response(html, status=status, headers={**PAGE_HEADERS, **(headers or {})})

    @bp.get("/")
    @hide
    async def dashboard() -> Response:
        if auth.token is None:
            return await login_page("The admin is disabled: set ADMIN_TOKEN to enable it.", 404)
        try:
            caller = await auth.identify(request)
        except AdminError as exc:  # a throttled bearer header
            return await login_page(exc.message, exc.status, exc.headers)
        if caller is None:
            presented = auth.bearer(request) or request.cookies.get(COOKIE_NAME)
            message = "That token is not valid; log in again." if presented else None
            response = await login_page(message, 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="quart-jobs admin"'
            return response
        new_cookie = None
        nonce = caller.nonce
        if nonce is None:  # authenticated by the bearer header: open a session for the script
            new_cookie = await auth.new_session()
            nonce = new_cookie.partition(".")[0]
        html = await render_template(
            f"{TEMPLATE_DIR}/dashboard.html",
            home=home,
            csrf_token=auth.csrf_token(nonce),
            csrf_header=CSRF_HEADER,
        )
        response = Response(html, headers=PAGE_HEADERS)
        if new_cookie is not None:
            auth.set_cookie(response, request, new_cookie)
        return response

    @bp.post("/login")
    @hide
    async def login() -> Response:
        if auth.token is None:
            return await login_page("The admin is disabled: set ADMIN_TOKEN to enable it.", 404)
        try:
            check_same_origin(request)
        except AdminError as exc:
            return await login_page(exc.message, 403)
        form = await request.form
        try:
            if not auth.check_attempt(request, form.get("token", "").strip()):
                return await login_page("That token is not valid.", 401)
        except AdminError as exc:  # throttled
            return await login_page(exc.message, exc.status, exc.headers)
        response = see_other(home)
        auth.set_cookie(response, request, await auth.new_session())
        return response

    @bp.post("/logout")
    @hide
    async def logout() -> Response:
        """End the session in the store (the cookie stops working everywhere), clear it."""
        try:
            check_same_origin(request)
        except AdminError as exc:
            return await login_page(exc.message, 403)
        await auth.end_session(request.cookies.get(COOKIE_NAME))
        response = see_other(home)
        auth.clear_cookie(response, request)
        return response

    @bp.get("/static/<path:filename>")
    @hide
    async def static(filename: str) -> Response:
        response = await send_from_directory(STATIC_DIR, filename)
        response.headers["Cache-Control"] = "no-cache"
        return response
