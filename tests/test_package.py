"""scripts/build_package.py builds the zip the Python worker expects, and nothing more."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "build_package.py"
APP_FILES = ("function_app.py", "host.json", "requirements.txt", "certsas/__init__.py")


def load_build_package() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_package", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


build_package = load_build_package()


def write(path: Path, text: str = "x\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the app's shippable files plus files that must never ship.

    Files the app's authors have not written yet get throw-away stand-ins, so this test
    does not depend on the order in which the project is built.
    """
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(REPO_ROOT / ".funcignore", root / ".funcignore")
    for name in APP_FILES:
        source = REPO_ROOT / name
        if source.is_file():
            write(root / name, source.read_text())
        else:
            write(root / name, "{}\n" if name.endswith(".json") else "# stand-in\n")
    for bait in (
        "tests/test_app.py",
        "tests/data/client.pem",
        "local.settings.json",
        "client.pem",
        "client.key",
        "certsas/dev.key",
        ".venv/lib/python3.11/site-packages/x.py",
        ".venv-infra/bin/checkov",
        "node_modules/azurite/index.js",
        ".git/config",
        ".ci/run",
        "infra/main.bicep",
        "scripts/deploy.sh",
        "docs/deploy.md",
        "certsas/__pycache__/cli.cpython-311.pyc",
        ".mypy_cache/x.json",
        "dist/old.zip",
        "__azurite_db_table__.json",
        "Makefile",
        "requirements-dev.txt",
    ):
        write(root / bait)
    return root


def build(root: Path, out: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), "--out", str(out), "--no-deps"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with zipfile.ZipFile(out) as archive:
        return archive.namelist()


def assert_shippable(names: list[str]) -> None:
    for required in APP_FILES:
        assert required in names, required
    for name in names:
        top = name.split("/", 1)[0]
        assert top not in {"tests", ".venv", ".venv-infra", "node_modules", ".git", "infra"}, name
        assert not name.endswith((".pem", ".key", ".pyc")), name
        assert Path(name).name != "local.settings.json", name


def test_package_of_project_holds_the_app_and_nothing_else(project: Path, tmp_path: Path) -> None:
    names = build(project, tmp_path / "out" / "certsas.zip")
    assert_shippable(names)
    assert sorted(names) == sorted(APP_FILES)


def test_package_of_the_repository(tmp_path: Path) -> None:
    if not all((REPO_ROOT / name).is_file() for name in APP_FILES):
        pytest.skip("the app files are not all written yet; covered by the copy above")
    assert_shippable(build(REPO_ROOT, tmp_path / "certsas.zip"))


def test_build_is_reproducible(project: Path, tmp_path: Path) -> None:
    build(project, tmp_path / "a.zip")
    build(project, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_dependencies_go_under_python_packages(project: Path, tmp_path: Path) -> None:
    deps = tmp_path / "deps"
    write(deps / "requests" / "__init__.py")
    write(deps / "requests" / "__pycache__" / "x.pyc")
    summary = build_package.build_package(project, tmp_path / "p.zip", dependencies_dir=deps)
    with zipfile.ZipFile(summary.path) as archive:
        names = archive.namelist()
    assert ".python_packages/lib/site-packages/requests/__init__.py" in names
    assert not any("__pycache__" in name for name in names)
    assert summary.dependency_files == 1


def test_missing_function_app_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "host.json", "{}")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(tmp_path), "--no-deps"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "function_app.py" in result.stderr
    assert not (tmp_path / "dist" / "certsas.zip").exists()


def test_funcignore_cannot_reinclude_key_material(project: Path, tmp_path: Path) -> None:
    write(project / ".funcignore", "!*.pem\n!local.settings.json\n")
    names = build(project, tmp_path / "c.zip")
    assert "client.pem" not in names
    assert "local.settings.json" not in names


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "ignored"),
    [
        ("tests/", "tests", True, True),
        ("tests/", "tests", False, False),
        ("*.pem", "a/b/c.pem", False, True),
        ("/Makefile", "Makefile", False, True),
        ("/Makefile", "sub/Makefile", False, False),
        ("docs/*.md", "docs/deploy.md", False, True),
        ("docs/*.md", "docs/sub/deploy.md", False, False),
        ("**/cache", "a/b/cache", True, True),
        ("a/**/z", "a/z", False, True),
        ("a/**/z", "a/b/c/z", False, True),
        (".venv*/", ".venv-infra", True, True),
        ("__azurite_db_*", "__azurite_db_blob__.json", False, True),
        ("file?.txt", "file1.txt", False, True),
        ("file[0-9].txt", "filex.txt", False, False),
    ],
)
def test_gitignore_patterns(pattern: str, path: str, is_dir: bool, ignored: bool) -> None:
    rules = build_package.parse_ignore_file(pattern)
    assert build_package.is_ignored(path, is_dir, rules) is ignored


def test_negation_and_comments() -> None:
    rules = build_package.parse_ignore_file("# comment\n\n*.txt\n!keep.txt\n")
    assert build_package.is_ignored("drop.txt", False, rules) is True
    assert build_package.is_ignored("keep.txt", False, rules) is False
