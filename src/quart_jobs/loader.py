"""``--app MODULE[:ATTR]``: the :class:`Jobs` of a user's module, found as Quart's loader finds
an app.

``MODULE`` is a dotted name or a ``.py`` path; its directory (for ``app``, the working
directory) goes first on ``sys.path``, as ``quart --app`` does. ``ATTR`` names a :class:`Jobs`,
a Quart app that uses :class:`QuartJobs`, or a factory of either that takes no argument
(``create_app``); ``create_app("x")`` calls a Quart app factory with those arguments. Without
``ATTR``: the module's one :class:`Jobs`, else its Quart app, found as Quart finds it (``app``,
``application``, the only app, then ``create_app()`` or ``make_app()``).

Every failure is a :class:`ConfigurationError` with a one-line message that names the cause.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from quart import Quart
from quart.cli import NoAppException, find_app_by_string, find_best_app, prepare_import

from .errors import ConfigurationError
from .extension import QuartJobs, get_jobs
from .jobs import Jobs

T = TypeVar("T")

#: Frames of these files are the loading machinery, never the line a user must look at.
_NOT_USER_CODE = ("<", __file__, os.path.dirname(importlib.__file__ or "<"))


def load_jobs(app_path: str) -> Jobs:
    """The :class:`Jobs` that ``app_path`` (``MODULE[:ATTR]``) names, configured: a Quart app's
    jobs have read its ``app.config``."""
    path, name = _split(app_path)
    where = f"--app {app_path}"
    module_name = prepare_import(path)
    module = _import(module_name, where)
    found = _named(module, name, where) if name else _default(module, where)
    jobs = _jobs_of(found, name or module_name, where)
    if isinstance(jobs, QuartJobs) and jobs.app is not None:
        jobs.configure_from(jobs.app)
    return jobs


def _split(app_path: str) -> tuple[str, str]:
    # As Quart: the first colon not followed by a path separator (C:\app.py stays whole).
    path, *rest = re.split(r":(?![\\/])", app_path, maxsplit=1)
    return path, rest[0] if rest else ""


def _import(module_name: str, where: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        parents = {".".join(module_name.split(".")[: i + 1]) for i in range(module_name.count("."))}
        if exc.name == module_name or exc.name in parents:
            raise ConfigurationError(
                f"{where}: no module named {module_name!r} in {os.getcwd()} or on sys.path"
            ) from None
        raise _failed(f"importing {module_name}", exc, where) from None
    except Exception as exc:
        raise _failed(f"importing {module_name}", exc, where) from None


def _failed(doing: str, exc: BaseException, where: str) -> ConfigurationError:
    """One line for an exception raised by the user's code: what failed, where."""
    frames = traceback.extract_tb(exc.__traceback__)
    user_frames = [f for f in frames if not f.filename.startswith(_NOT_USER_CODE)]
    at = f" at {user_frames[-1].filename}:{user_frames[-1].lineno}" if user_frames else ""
    message = " ".join(str(exc).split())  # one line, whatever the exception's text
    return ConfigurationError(
        f"{where}: {doing} failed: {type(exc).__name__}: {message}{at}".rstrip(": ")
    )


def _user_code(doing: str, where: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except NoAppException as exc:
        raise ConfigurationError(f"{where}: {' '.join(str(exc).split())}") from None
    except ConfigurationError:
        raise
    except Exception as exc:
        raise _failed(doing, exc, where) from None


def _named(module: ModuleType, name: str, where: str) -> Any:
    if not name.isidentifier():  # a factory call with arguments: Quart's parser
        return _user_code(f"calling {name}", where, lambda: find_app_by_string(module, name))
    if not hasattr(module, name):
        raise ConfigurationError(f"{where}: module {module.__name__!r} has no {name!r}")
    found = getattr(module, name)
    if inspect.isfunction(found):
        return _call_factory(found, name, where)
    return found


def _call_factory(factory: Callable[[], Any], name: str, where: str) -> Any:
    required = [
        p
        for p in inspect.signature(factory).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if required:
        raise ConfigurationError(
            f"{where}: the factory {name}() needs arguments "
            f"({', '.join(p.name for p in required)}); give them: MODULE:{name}(...)"
        )
    return _user_code(f"calling {name}()", where, factory)


def _default(module: ModuleType, where: str) -> Any:
    candidates = {id(v): v for v in vars(module).values() if isinstance(v, Jobs)}
    usable = [j for j in candidates.values() if not (isinstance(j, QuartJobs) and j.app is None)]
    if len(usable) == 1 and len(candidates) == 1:
        return usable[0]
    if len(usable) > 1:
        raise ConfigurationError(
            f"{where}: module {module.__name__!r} has several Jobs; name one: "
            f"{module.__name__}:NAME"
        )
    try:
        return _user_code("finding the app", where, lambda: find_best_app(module))
    except ConfigurationError:
        if candidates:
            raise
        raise ConfigurationError(
            f"{where}: module {module.__name__!r} has no Jobs and no Quart app; "
            f"name one: {module.__name__}:NAME"
        ) from None


def _jobs_of(found: Any, name: str, where: str) -> Jobs:
    if isinstance(found, Jobs):
        return found
    if isinstance(found, Quart):
        try:
            return get_jobs(found)
        except RuntimeError:
            raise ConfigurationError(
                f"{where}: the Quart app {name} does not use quart-jobs: "
                "call QuartJobs(app) or jobs.init_app(app) where it is created"
            ) from None
    raise ConfigurationError(
        f"{where}: {name} is a {type(found).__name__}, not a Jobs, a Quart app or a factory "
        "of either"
    )
