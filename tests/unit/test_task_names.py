"""A task's registered name is the same whether its module was imported or ran as ``__main__``
(the processes that run the task import it by that name)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from quart_jobs import TaskRegistrationError
from quart_jobs.registry import Registry, main_module_name, module_name_of_file


def run_as_main(path: Path, spec_name: str | None = None) -> types.ModuleType:
    """Execute ``path`` the way ``python path`` (or ``python -m spec_name``) would."""
    module = types.ModuleType("__main__")
    module.__file__ = str(path)
    module.__spec__ = (
        None if spec_name is None else types.SimpleNamespace(name=spec_name)  # type: ignore[assignment]
    )
    exec(compile(path.read_text(), str(path), "exec"), vars(module))
    return module


SOURCE = "async def send(x):\n    return x\n"


def test_a_script_is_named_after_its_file(tmp_path: Path) -> None:
    script = tmp_path / "tasks.py"
    script.write_text(SOURCE)
    registry = Registry()
    assert registry.register(run_as_main(script).send).name == "tasks.send"


def test_a_script_inside_a_package_gets_the_package_prefix(tmp_path: Path) -> None:
    package = tmp_path / "shop" / "jobs"
    package.mkdir(parents=True)
    for directory in (tmp_path / "shop", package):
        (directory / "__init__.py").write_text("")
    script = package / "mail.py"
    script.write_text(SOURCE)
    assert module_name_of_file(str(script)) == "shop.jobs.mail"
    assert module_name_of_file(str(package / "__init__.py")) == "shop.jobs"
    assert Registry().register(run_as_main(script).send).name == "shop.jobs.mail.send"


def test_python_dash_m_uses_the_module_spec(tmp_path: Path) -> None:
    script = tmp_path / "mail.py"
    script.write_text(SOURCE)
    send = run_as_main(script, spec_name="shop.mail").send
    assert Registry().register(send).name == "shop.mail.send"


def test_no_file_keeps_main() -> None:
    assert main_module_name({"__name__": "__main__"}) is None
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(SOURCE, "<string>", "exec"), namespace)
    assert Registry().register(namespace["send"]).name == "__main__.send"  # type: ignore[arg-type]


def test_the_same_definition_imported_twice_is_one_task(tmp_path: Path) -> None:
    """``python tasks.py`` whose code imports ``tasks`` again: one task, either object works."""
    script = tmp_path / "tasks.py"
    script.write_text(SOURCE)
    registry = Registry()
    first = registry.register(run_as_main(script).send)
    again = run_as_main(script).send
    assert registry.register(again) is first
    task, _, _ = registry.resolve(again, (1,), {})
    assert task is first


def test_a_different_function_under_the_same_name_is_still_refused(tmp_path: Path) -> None:
    script = tmp_path / "tasks.py"
    script.write_text(SOURCE)
    registry = Registry()
    registry.register(run_as_main(script).send)
    other = tmp_path / "other" / "tasks.py"
    other.parent.mkdir()
    other.write_text("\n" + SOURCE)
    with pytest.raises(TaskRegistrationError, match=r"already registered as 'tasks\.send'"):
        registry.register(run_as_main(other).send)
