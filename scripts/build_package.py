"""Build dist/certsas.zip, the package scripts/deploy.sh uploads to the app's blob (SPEC §7).

What ships is an allow-list, never a deny-list over the working tree: the three files
the worker needs at the zip root, and the runtime package `certsas/` less its two
wings that do not run in Azure (`certsas/cli/`, `certsas/devtools/`) and
`certsas/__main__.py`. Only files git tracks are considered, so an untracked
`secrets.json`, key or `.azure/` folder can never ride along. Dependencies go under
`.python_packages/lib/site-packages`, installed for the platform Azure runs (Linux
x86_64, and the CPython version the Bicep's `pythonVersion` sets, 3.12 unless told),
not the one this script runs on: pip picks the wheels of that ABI whatever Python runs
this script. It needs Python with pip, and git; not Node.js, not the dev environment.

    python scripts/build_package.py [--root DIR] [--out dist/certsas.zip] [--no-deps]
                                    [--python-version 3.11|3.12]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("dist") / "certsas.zip"
SITE_PACKAGES = PurePosixPath(".python_packages/lib/site-packages")

# The worker imports function_app.py from the zip root and reads host.json beside it.
ROOT_FILES = ("function_app.py", "host.json", "requirements.txt")
APP_PACKAGE = "certsas/"
# Inside the package but not the service: the operator's and the developer's wings.
NOT_SHIPPED = ("certsas/cli/", "certsas/devtools/", "certsas/__main__.py", "certsas/client/")

# Fixed timestamps make two builds of the same tree byte-identical.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)

# The versions infra/app/function.bicep allows (its `pythonVersion` parameter), and its default.
PYTHON_VERSIONS = ("3.11", "3.12")
DEFAULT_PYTHON_VERSION = "3.12"


def pip_platform_args(python_version: str) -> tuple[str, ...]:
    """pip's arguments for wheels of Linux x86_64 and CPython ``python_version`` only."""
    if python_version not in PYTHON_VERSIONS:
        raise ValueError(f"Python {python_version} is not one the app runs on "
                         f"({', '.join(PYTHON_VERSIONS)})")
    return ("--platform", "manylinux2014_x86_64", "--only-binary=:all:",
            "--python-version", python_version, "--implementation", "cp")


def tracked_files(root: Path) -> list[str]:
    """Every file git tracks under ``root`` (root-relative POSIX paths); ValueError outside git."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--full-name", "--", "."],
            capture_output=True, check=True,
        ).stdout
        top = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"],
            capture_output=True, check=True, text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise ValueError(f"{root} is not a git checkout: the package ships tracked files only"
                         ) from None
    prefix = Path(root).resolve().relative_to(Path(top).resolve()).as_posix()
    names = [name.decode() for name in listed.split(b"\0") if name]
    if prefix != ".":
        names = [name[len(prefix) + 1:] for name in names if name.startswith(prefix + "/")]
    return sorted(set(names))  # an unmerged path is listed once per stage


def is_shipped(name: str) -> bool:
    """The allow-list: the root files, and the runtime modules of ``certsas/``."""
    if name in ROOT_FILES:
        return True
    return (name.startswith(APP_PACKAGE) and name.endswith(".py")
            and not name.startswith(NOT_SHIPPED))


def app_files(root: Path) -> list[str]:
    """What the package holds besides dependencies, in zip order; ValueError if incomplete."""
    names = [name for name in tracked_files(root) if is_shipped(name)]
    missing = [name for name in ROOT_FILES if name not in names]
    if missing:
        raise ValueError(f"{root} is not a function app project: missing {', '.join(missing)} "
                         f"(or not tracked by git)")
    return names


def _add_file(archive: zipfile.ZipFile, source: Path, arcname: PurePosixPath) -> None:
    info = zipfile.ZipInfo(str(arcname), date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | 0o644) << 16
    archive.writestr(info, source.read_bytes())


def install_dependencies(requirements: Path, target: Path,
                         python_version: str = DEFAULT_PYTHON_VERSION) -> None:
    """pip-install requirements for Linux x86_64 / CPython ``python_version`` into `target`."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--target", str(target), *pip_platform_args(python_version), "-r", str(requirements)],
        check=True,
    )


@dataclass(frozen=True)
class PackageSummary:
    """What a build wrote."""

    path: Path
    app_files: int
    dependency_files: int


def build_package(root: Path, out: Path, *, dependencies_dir: Path | None = None
                  ) -> PackageSummary:
    """Zip the project at `root` into `out`.

    `dependencies_dir`, when given, is a pip `--target` tree stored under
    `.python_packages/lib/site-packages`. Raises ValueError when `root` is not a git
    checkout of a function app.
    """
    root = root.resolve()
    names = app_files(root)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    dependency_files = 0
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            _add_file(archive, root / name, PurePosixPath(name))
        if dependencies_dir is not None:
            for dirpath, dirnames, filenames in os.walk(dependencies_dir):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                for filename in sorted(filenames):
                    source = Path(dirpath) / filename
                    rel_dep = PurePosixPath(source.relative_to(dependencies_dir).as_posix())
                    _add_file(archive, source, SITE_PACKAGES / rel_dep)
                    dependency_files += 1
    # Replace in one step so a failed build never leaves a half-written package behind.
    partial.replace(out)
    return PackageSummary(path=out, app_files=len(names), dependency_files=dependency_files)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the certsas Azure Functions deployment zip.")
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="project directory, a git checkout (default: the repository)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"zip to write (default: ROOT/{DEFAULT_OUT})")
    parser.add_argument("--no-deps", action="store_true",
                        help="do not pip-install requirements.txt into .python_packages")
    parser.add_argument("--python-version", choices=PYTHON_VERSIONS,
                        default=DEFAULT_PYTHON_VERSION,
                        help="the app's Python (the Bicep's pythonVersion; default: "
                             f"{DEFAULT_PYTHON_VERSION}): dependencies are wheels for it")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    root: Path = args.root
    out: Path = args.out if args.out is not None else root / DEFAULT_OUT
    try:
        if args.no_deps:
            summary = build_package(root, out)
        else:
            app_files(root)  # refuse a bad root before the slow install
            with tempfile.TemporaryDirectory(prefix="certsas-deps-") as tmp:
                install_dependencies(root / "requirements.txt", Path(tmp), args.python_version)
                summary = build_package(root, out, dependencies_dir=Path(tmp))
    except (ValueError, OSError, subprocess.CalledProcessError) as exc:
        print(f"build_package: error: {exc}", file=sys.stderr)
        return 1
    deps = "" if args.no_deps else f" for Python {args.python_version}"
    print(f"wrote {summary.path}: {summary.app_files} app files, "
          f"{summary.dependency_files} dependency files{deps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
