"""Who may use the admin: the bearer token, the session cookie, and the cross-site defences.

* Scripts send ``Authorization: Bearer <ADMIN_TOKEN>``.
* A person enters the token once in the login form; ``POST /admin/login`` answers with a
  session cookie (HttpOnly, SameSite=Strict, path ``/admin``, and Secure when the request came
  over HTTPS, directly or through a declared trusted proxy). The cookie holds a random nonce
  and an HMAC of it keyed by the token, never the token itself, so it stops working when the
  token changes. The session also lives in the job store (a digest of the nonce, with its
  expiry): ``POST /admin/logout`` deletes it there, so the old cookie stops working in every
  process that shares the store.
* Wrong tokens (login form or bearer header) are counted per client: past
  :data:`LOGIN_FAILURES_PER_MINUTE` in a minute the client gets 429 with ``Retry-After``.
* A POST authenticated by the cookie must also carry ``X-CSRF-Token``: an HMAC of the same
  nonce under another label, which the dashboard page embeds and its script sends back (a
  page on another site can neither read it nor set that header). Such POSTs are also refused
  when ``Sec-Fetch-Site`` or ``Origin`` show they come from another site.

Every comparison uses :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from quart import Request, Response

from ..jobs import Jobs
from .clients import ClientView, FailureThrottle

COOKIE_NAME = "quart_jobs_admin"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600
LOGIN_FAILURES_PER_MINUTE = 10
#: Admin tokens shorter than this are refused by :func:`~quart_jobs.admin.register_admin`.
MIN_TOKEN_LENGTH = 16

TokenSource = str | None | Callable[[], str | None]


class AdminError(Exception):
    """An admin request refused or impossible: answered as JSON ``{"error": {...}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _sign(token: str, label: str, nonce: str) -> str:
    mac = hmac.new(token.encode("utf-8", "surrogatepass"), digestmod=hashlib.sha256)
    mac.update(f"{label}:{nonce}".encode())
    return mac.hexdigest()


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: by bearer header, or by session cookie (with its nonce)."""

    via_cookie: bool
    nonce: str | None = None


class AdminAuth:
    """Checks admin requests against the token that ``source`` gives (read on every request,
    so a token can come from settings that change)."""

    def __init__(
        self,
        source: TokenSource,
        jobs: Jobs,
        *,
        cookie_path: str = "/admin",
        clients: ClientView | None = None,
        throttle: FailureThrottle | None = None,
    ) -> None:
        self._source = source
        self.jobs = jobs
        self.cookie_path = cookie_path
        self.clients = clients or ClientView()
        self.throttle = throttle or FailureThrottle(LOGIN_FAILURES_PER_MINUTE, 60.0)

    @property
    def token(self) -> str | None:
        token = self._source() if callable(self._source) else self._source
        return token or None

    def require_token(self) -> str:
        token = self.token
        if token is None:
            raise AdminError(
                404,
                "admin_disabled",
                "the admin is disabled: set ADMIN_TOKEN to enable it",
            )
        return token

    def token_matches(self, candidate: str) -> bool:
        token = self.token
        return token is not None and bool(candidate) and _equal(candidate, token)

    def check_attempt(self, request: Request, candidate: str) -> bool:
        """Whether ``candidate`` is the token, for a client that is not throttled (else
        :class:`AdminError` 429); a wrong one counts against the client."""
        client = self.clients.address(request)
        wait = self.throttle.retry_after(client)
        if wait is not None:
            raise AdminError(
                429,
                "too_many_attempts",
                f"too many wrong admin tokens from this client; try again in {wait} s",
                {"Retry-After": str(wait)},
            )
        if self.token_matches(candidate):
            return True
        self.throttle.failed(client)
        return False

    # --- sessions ----------------------------------------------------------------------------

    async def new_session(self) -> str:
        """A cookie value for a fresh session (``nonce.signature``), stored in the job store."""
        nonce = secrets.token_urlsafe(18)
        signature = _sign(self.require_token(), "session", nonce)
        now = self.jobs.clock()
        await self.jobs.operator.create_session(_digest(nonce), now + SESSION_SECONDS, now)
        return f"{nonce}.{signature}"

    def _signed_nonce(self, cookie: str | None) -> str | None:
        token = self.token
        if token is None or not cookie or "." not in cookie:
            return None
        nonce, _, signature = cookie.partition(".")
        if not nonce or not _equal(signature, _sign(token, "session", nonce)):
            return None
        return nonce

    async def session_nonce(self, cookie: str | None) -> str | None:
        """The nonce of a valid, live session cookie, else ``None``."""
        nonce = self._signed_nonce(cookie)
        if nonce is None:
            return None
        active = await self.jobs.operator.session_active(_digest(nonce), self.jobs.clock())
        return nonce if active else None

    async def end_session(self, cookie: str | None) -> None:
        nonce = self._signed_nonce(cookie)
        if nonce is not None:
            await self.jobs.operator.end_session(_digest(nonce))

    def csrf_token(self, nonce: str) -> str:
        return _sign(self.require_token(), "csrf", nonce)

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=SESSION_SECONDS,
            path=self.cookie_path,
            secure=self.clients.is_https(request),
            httponly=True,
            samesite="Strict",
        )

    def clear_cookie(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE_NAME,
            path=self.cookie_path,
            secure=self.clients.is_https(request),
            httponly=True,
            samesite="Strict",
        )

    # --- requests ----------------------------------------------------------------------------

    def bearer(self, request: Request) -> str | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    async def identify(self, request: Request) -> Caller | None:
        """Who sent ``request`` (a valid bearer header wins over the cookie), or ``None``."""
        presented = self.bearer(request)
        if presented is not None:
            return Caller(via_cookie=False) if self.check_attempt(request, presented) else None
        nonce = await self.session_nonce(request.cookies.get(COOKIE_NAME))
        return None if nonce is None else Caller(via_cookie=True, nonce=nonce)

    async def authenticate(self, request: Request, *, write: bool = False) -> Caller:
        """The caller, or :class:`AdminError` 401 (403 for a cookie POST that fails the
        cross-site checks, 429 for a throttled client)."""
        self.require_token()
        caller = await self.identify(request)
        if caller is None:
            raise AdminError(
                401,
                "unauthorized",
                "send the admin token as 'Authorization: Bearer <token>' or log in at the "
                "dashboard",
                {"WWW-Authenticate": 'Bearer realm="quart-jobs admin"'},
            )
        if write and caller.via_cookie:
            check_same_origin(request)
            sent = request.headers.get(CSRF_HEADER, "")
            assert caller.nonce is not None
            if not sent or not _equal(sent, self.csrf_token(caller.nonce)):
                raise AdminError(
                    403,
                    "csrf_failed",
                    f"a request authenticated by the session cookie must send the page's "
                    f"{CSRF_HEADER} header; reload the dashboard",
                )
        return caller


def _digest(nonce: str) -> str:
    """What the store keeps of a session: a digest, so a copy of the database opens none."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def check_same_origin(request: Request) -> None:
    """Refuse a request that the browser says comes from another site (or another origin)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise AdminError(403, "cross_site", f"cross-site request refused (Sec-Fetch-Site: {site})")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if origin == "null":
        raise AdminError(403, "cross_site", "request from an opaque origin refused")
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:  # "http://[::1", say: not an origin this site sends
        netloc = None
    if netloc is None or netloc != request.host.lower():
        shown = origin[:100].encode("ascii", "backslashreplace").decode()
        raise AdminError(403, "cross_site", f"cross-origin request refused (Origin: {shown})")
