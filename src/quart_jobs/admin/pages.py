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

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
}


def see_other(location: str) -> Response:
    return Response("", status=303, headers={"Location": location})


def add_page_routes(bp: Blueprint, auth: AdminAuth, prefix: str) -> None:
    """Mount ``/`` (dashboard or login form), ``/login``, ``/logout`` and ``/static/…``."""
    home = prefix.rstrip("/") + "/"

    async def login_page(message: str | None, status: int) -> Response:
        html = await render_template(f"{TEMPLATE_DIR}/login.html", home=home, message=message)
        return Response(html, status=status, headers=PAGE_HEADERS)

    @bp.get("/")
    @hide
    async def dashboard() -> Response:
        if auth.token is None:
            return await login_page("The admin is disabled: set ADMIN_TOKEN to enable it.", 404)
        caller = auth.identify(request)
        if caller is None:
            presented = auth.bearer(request) or request.cookies.get(COOKIE_NAME)
            message = "That token is not valid; log in again." if presented else None
            response = await login_page(message, 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="quart-jobs admin"'
            return response
        new_cookie = None
        nonce = caller.nonce
        if nonce is None:  # authenticated by the bearer header: open a session for the script
            new_cookie = auth.new_session()
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
        if not auth.token_matches(form.get("token", "").strip()):
            return await login_page("That token is not valid.", 401)
        response = see_other(home)
        auth.set_cookie(response, request, auth.new_session())
        return response

    @bp.route("/logout", methods=["GET", "POST"])
    @hide
    async def logout() -> Response:
        response = see_other(home)
        auth.clear_cookie(response, request)
        return response

    @bp.get("/static/<path:filename>")
    @hide
    async def static(filename: str) -> Response:
        response = await send_from_directory(STATIC_DIR, filename)
        response.headers["Cache-Control"] = "no-cache"
        return response
