"""`make package` ships the service alone: an allow-list of tracked files (SPEC §7)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import ROOT

SCRIPT = ROOT / "scripts" / "build_package.py"

# What runs in Azure, named one by one so that a reviewer of this list reviews the artifact.
SHIPPED = sorted([
    "function_app.py",
    "host.json",
    "requirements.txt",
    "certsas/__init__.py",
    "certsas/accounts.py",
    "certsas/audit.py",
    "certsas/broker.py",
    "certsas/cache.py",
    "certsas/clientcert.py",
    "certsas/clock.py",
    "certsas/config.py",
    "certsas/crl/__init__.py",
    "certsas/crl/checker.py",
    "certsas/crl/validation.py",
    "certsas/entities.py",
    "certsas/envvalues.py",
    "certsas/epoch.py",
    "certsas/errors.py",
    "certsas/expiry.py",
    "certsas/grants.py",
    "certsas/http.py",
    "certsas/netfetch.py",
    "certsas/ocsp/__init__.py",
    "certsas/ocsp/checker.py",
    "certsas/ocsp/der.py",
    "certsas/ocsp/fetch.py",
    "certsas/ocsp/validation.py",
    "certsas/permissions.py",
    "certsas/registration.py",
    "certsas/registry.py",
    "certsas/revocation.py",
    "certsas/rotation.py",
    "certsas/runtime.py",
    "certsas/sas.py",
    "certsas/signatures.py",
    "certsas/scope.py",
    "certsas/successor.py",
    "certsas/storage.py",
    "certsas/tableauth.py",
    "certsas/tablebatch.py",
    "certsas/tables.py",
    "certsas/thumbprints.py",
    "certsas/verification.py",
])

# Untracked files a working tree collects; none may ever ship.
DECOYS = (
    "secrets.json",
    "id_ed25519",
    ".azure/dev/.env",
    "local.settings.prod.json",
    "local.settings.json",
    "certsas/scratch.py",
    "certsas/ocsp/debug_dump.py",
    "certsas/client.pem",
    "dist/old.zip",
)


def load_build_package() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_package", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


build_package = load_build_package()


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=True).stdout


def tracked() -> list[str]:
    return [line for line in git(ROOT, "ls-files").splitlines() if (ROOT / line).is_file()]


def copy_tracked(into: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """A new git checkout at ``into`` holding the repository's tracked files."""
    into.mkdir()
    for name in tracked():
        if name in skip:
            continue
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    git(into, "init", "-q")
    git(into, "add", "-A")
    return into


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with untracked decoys beside the tracked files."""
    root = copy_tracked(tmp_path_factory.mktemp("project") / "repo")
    for decoy in DECOYS:
        path = root / decoy
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("decoy\n")
    return root


def build(root: Path, out: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), "--out", str(out), "--no-deps"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with zipfile.ZipFile(out) as archive:
        return archive.namelist()


def test_package_is_exactly_the_allow_list_whatever_lies_untracked(
        project: Path, tmp_path: Path) -> None:
    assert sorted(build(project, tmp_path / "out" / "certsas.zip")) == SHIPPED


def test_package_of_the_repository_itself(tmp_path: Path) -> None:
    assert sorted(build(ROOT, tmp_path / "certsas.zip")) == SHIPPED


def test_no_cli_or_dev_tool_ships_and_the_runtime_does_not_need_them(tmp_path: Path) -> None:
    names = build(ROOT, tmp_path / "certsas.zip")
    assert not [n for n in names if n.startswith(("certsas/cli/", "certsas/devtools/", "tests/"))]
    assert not [n for n in names if n.startswith(("certsas/client/", "requirements-client"))]
    # The unzipped package imports without the wings (dependencies come from this venv).
    with zipfile.ZipFile(tmp_path / "certsas.zip") as archive:
        archive.extractall(tmp_path / "site")
    probe = ("import function_app, sys; "
             "wings = [m for m in sys.modules if m.split('.')[:2] in "
             "(['certsas', 'cli'], ['certsas', 'devtools'])]; "
             "assert not wings, wings; "
             "print(sorted(f.get_function_name() for f in function_app.app.get_functions()))")
    env = {"PATH": "/usr/bin:/bin", "TRUSTED_CA_CERTS": "", "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path / "site", env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "ModuleNotFoundError" not in done.stderr
    # With no settings the app still indexes every function, and says why it is unusable.
    assert done.stdout.strip() == "['expiry_check', 'health', 'rotate', 'token']"
    assert "certsas startup " in done.stderr and "TRUSTED_CA_CERTS" in done.stderr


def test_funcignore_lets_through_exactly_what_the_package_ships(tmp_path: Path) -> None:
    """Core Tools and azd read .funcignore (gitignore syntax); git's own matcher reads it here."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in tracked():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    (root / ".gitignore").unlink()
    git(root, "init", "-q")
    git(root, "-c", f"core.excludesFile={root / '.funcignore'}", "add", "-A")
    assert sorted(git(root, "ls-files").splitlines()) == SHIPPED


def test_build_is_reproducible(project: Path, tmp_path: Path) -> None:
    build(project, tmp_path / "a.zip")
    build(project, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_dependencies_go_under_python_packages(project: Path, tmp_path: Path) -> None:
    deps = tmp_path / "deps"
    (deps / "requests" / "__pycache__").mkdir(parents=True)
    (deps / "requests" / "__init__.py").write_text("x\n")
    (deps / "requests" / "__pycache__" / "x.pyc").write_text("x\n")
    summary = build_package.build_package(project, tmp_path / "p.zip", dependencies_dir=deps)
    with zipfile.ZipFile(summary.path) as archive:
        names = archive.namelist()
    assert ".python_packages/lib/site-packages/requests/__init__.py" in names
    assert not any("__pycache__" in name for name in names)
    assert (summary.app_files, summary.dependency_files) == (len(SHIPPED), 1)


def test_a_tree_that_is_not_a_git_checkout_is_refused(tmp_path: Path) -> None:
    for name in ("function_app.py", "host.json", "requirements.txt"):
        (tmp_path / name).write_text("x\n")
    result = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path), "--no-deps"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "not a git checkout" in result.stderr
    assert not (tmp_path / "dist" / "certsas.zip").exists()


def test_an_untracked_function_app_is_missing(tmp_path: Path) -> None:
    root = copy_tracked(tmp_path / "repo", skip=("function_app.py",))
    (root / "function_app.py").write_text("x\n")  # present, but git does not track it
    result = subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), "--no-deps"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "missing function_app.py" in result.stderr


# --- make package: Python and git only, wheels for the app's Python (issue 18, 15 and 17) ---

def bicep_python_versions() -> tuple[str, tuple[str, ...]]:
    """The default and allowed values of pythonVersion, the same in main.bicep and the module
    that sets linuxFxVersion from it."""
    found = set()
    for path in (ROOT / "infra" / "main.bicep", ROOT / "infra" / "app" / "function.bicep"):
        text = path.read_text()
        declared = re.search(r"@allowed\(\[\s*((?:'[\d.]+'\s*)+)\]\)\s*param pythonVersion string "
                             r"= '([\d.]+)'", text)
        assert declared, path
        found.add((declared.group(2), tuple(re.findall(r"'([\d.]+)'", declared.group(1)))))
    assert "linuxFxVersion: 'Python|${pythonVersion}'" in (
        ROOT / "infra" / "app" / "function.bicep").read_text()
    ((default, allowed),) = found
    return default, allowed


def make_package(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`make package` with nothing on PATH but git and make: no npm, no node, no venv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("git", "make"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).unlink(missing_ok=True)
        (bin_dir / tool).symlink_to(found)
    path = str(bin_dir)
    assert shutil.which("npm", path=path) is None and shutil.which("node", path=path) is None
    env = {"PATH": path, "HOME": str(Path.home()), "PYTHON": sys.executable}
    return subprocess.run(["make", "package", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def compiled_versions(archive: zipfile.ZipFile) -> tuple[set[str], set[str]]:
    """The CPython tags of the zip's extension modules, and of its wheels' WHEEL files."""
    modules = {m.group(1) for name in archive.namelist()
               if (m := re.search(r"\.(cpython-\d+|abi3)[-\w]*\.so$", name))}
    tags = set()
    for name in archive.namelist():
        if name.endswith(".dist-info/WHEEL"):
            for line in archive.read(name).decode().splitlines():
                if line.startswith("Tag: "):
                    tags.add(line[len("Tag: "):])
    return modules, tags


@pytest.mark.slow
@pytest.mark.parametrize("requested", [None, "3.11"], ids=["bicep-default", "3.11"])
def test_make_package_without_node_builds_wheels_for_the_apps_python(
        project: Path, tmp_path: Path, requested: str | None) -> None:
    default, allowed = bicep_python_versions()
    assert (default, allowed) == (build_package.DEFAULT_PYTHON_VERSION,
                                  build_package.PYTHON_VERSIONS)
    assert f"PYTHON_VERSION ?= {default}\n" in (ROOT / "Makefile").read_text()
    version = requested or default
    assert version in allowed
    done = make_package(project, tmp_path, *([f"PYTHON_VERSION={requested}"] if requested else []))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"for Python {version}" in done.stdout
    # Nothing of the dev environment was made on the way.
    assert not (project / ".venv").exists() and not (project / "node_modules").exists()
    with zipfile.ZipFile(project / "dist" / "certsas.zip") as archive:
        modules, tags = compiled_versions(archive)
    cp = "cp" + version.replace(".", "")
    assert modules, "the package has extension modules (cryptography, cffi)"
    assert modules <= {f"cpython-{cp[2:]}", "abi3"}, modules
    assert f"cpython-{cp[2:]}" in modules
    for tag in tags:
        interpreter, abi, platform = tag.split("-")
        assert platform == "any" or ("manylinux" in platform and platform.endswith("x86_64")), tag
        if abi == "abi3":
            assert interpreter.startswith("cp3") and int(interpreter[3:]) <= int(cp[3:]), tag
        elif abi != "none":
            assert (interpreter, abi) == (cp, cp), tag


def test_an_unsupported_python_version_is_refused_before_any_download(
        project: Path, tmp_path: Path) -> None:
    done = make_package(project, tmp_path, "PYTHON_VERSION=3.12.7")
    assert done.returncode != 0
    assert "invalid choice: '3.12.7'" in done.stderr
