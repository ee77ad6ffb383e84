"""Build the zip that `az functionapp deploy --type zip` uploads for certsas.

The Python worker on Linux imports the app from the zip root (function_app.py, host.json,
the certsas package) and its dependencies from `.python_packages/lib/site-packages`, so
those are installed here for the platform Azure runs, not the one this script runs on.
What is left out follows `.funcignore` (gitignore-style patterns), the same file Core Tools
and azd read, so every deployment path ships the same files.

    python scripts/build_package.py [--root DIR] [--out dist/certsas.zip] [--no-deps]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("dist") / "certsas.zip"
SITE_PACKAGES = PurePosixPath(".python_packages/lib/site-packages")

# The worker cannot start without these, so a package missing one is refused here rather
# than after a deployment.
REQUIRED_FILES = ("function_app.py", "host.json", "requirements.txt")

# Left out even when .funcignore is missing or forgets them: a deployment package must never
# carry keys, local secrets or a stale dependency tree built for another platform.
ALWAYS_IGNORED = (
    ".git/",
    ".python_packages/",
    "local.settings.json",
    ".env",
    "*.pem",
    "*.key",
    "*.pfx",
    "*.p12",
)

# Fixed timestamps make two builds of the same tree byte-identical.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)

PIP_PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_x86_64",
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
)


@dataclass(frozen=True)
class IgnoreRule:
    """One `.funcignore` line."""

    pattern: str
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool

    def matches(self, rel_path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return self.regex.match(rel_path) is not None


def _glob_to_regex(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            if glob.startswith("**", i):
                if glob.startswith("**/", i):
                    out.append("(?:.*/)?")
                    i += 3
                else:
                    out.append(".*")
                    i += 2
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
                continue
        elif char == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def parse_rule(line: str) -> IgnoreRule | None:
    """Turn one gitignore-style line into a rule, or None for blanks and comments."""
    text = line.rstrip("\n").rstrip()
    if not text or text.startswith("#"):
        return None
    negate = text.startswith("!")
    if negate:
        text = text[1:]
    dir_only = text.endswith("/")
    text = text.rstrip("/")
    if not text:
        return None
    # As in git: a slash anywhere but the end anchors the pattern to the root; otherwise it
    # matches a name at any depth.
    anchored = "/" in text
    body = _glob_to_regex(text.lstrip("/"))
    prefix = "^" if anchored else "^(?:.*/)?"
    return IgnoreRule(
        pattern=line.strip(),
        regex=re.compile(prefix + body + "$"),
        negate=negate,
        dir_only=dir_only,
    )


def parse_ignore_file(text: str) -> list[IgnoreRule]:
    """Rules of a whole `.funcignore`, in file order."""
    return [rule for rule in map(parse_rule, text.splitlines()) if rule is not None]


def load_rules(root: Path) -> list[IgnoreRule]:
    """The built-in exclusions followed by the root's `.funcignore` (if any)."""
    rules = parse_ignore_file("\n".join(ALWAYS_IGNORED))
    funcignore = root / ".funcignore"
    user_rules = parse_ignore_file(funcignore.read_text()) if funcignore.is_file() else []
    # A `.funcignore` may not re-include what ALWAYS_IGNORED keeps out, so those rules are
    # applied again after it.
    return rules + user_rules + rules


def is_ignored(rel_path: str, is_dir: bool, rules: Sequence[IgnoreRule]) -> bool:
    """Whether a root-relative POSIX path is excluded; the last matching rule wins."""
    ignored = False
    for rule in rules:
        if rule.matches(rel_path, is_dir):
            ignored = not rule.negate
    return ignored


def iter_package_files(root: Path, rules: Sequence[IgnoreRule]) -> Iterator[PurePosixPath]:
    """Root-relative paths of the files to ship, sorted, skipping ignored directories whole."""
    for dirpath, dirnames, filenames in os.walk(root):
        current = Path(dirpath)
        rel_dir = current.relative_to(root).as_posix()
        kept_dirs = []
        for name in sorted(dirnames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            # Symlinked directories could pull in files from outside the project.
            if (current / name).is_symlink() or is_ignored(rel, True, rules):
                continue
            kept_dirs.append(name)
        dirnames[:] = kept_dirs
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if (current / name).is_symlink() or is_ignored(rel, False, rules):
                continue
            yield PurePosixPath(rel)


def _add_file(archive: zipfile.ZipFile, source: Path, arcname: PurePosixPath) -> None:
    info = zipfile.ZipInfo(str(arcname), date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if os.access(source, os.X_OK) else 0o644
    info.external_attr = (0o100000 | mode) << 16
    archive.writestr(info, source.read_bytes())


def install_dependencies(requirements: Path, target: Path) -> None:
    """pip-install requirements for Linux x86_64 / CPython 3.11 into `target`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *PIP_PLATFORM_ARGS,
            "-r",
            str(requirements),
        ],
        check=True,
    )


@dataclass(frozen=True)
class PackageSummary:
    """What a build wrote."""

    path: Path
    app_files: int
    dependency_files: int


def build_package(
    root: Path,
    out: Path,
    *,
    dependencies_dir: Path | None = None,
) -> PackageSummary:
    """Zip the project at `root` into `out`.

    `dependencies_dir`, when given, is a pip `--target` tree stored under
    `.python_packages/lib/site-packages`. Raises ValueError when a file the worker needs is
    missing.
    """
    root = root.resolve()
    out = out.resolve()
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise ValueError(f"{root} is not a function app project: missing {', '.join(missing)}")

    rules = load_rules(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    app_files = 0
    dependency_files = 0
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in iter_package_files(root, rules):
            source = root / rel
            # The output may live inside the tree being zipped (dist/ is usually ignored, but
            # --out can point anywhere).
            if source.resolve() in (out, partial):
                continue
            _add_file(archive, source, rel)
            app_files += 1
        if dependencies_dir is not None:
            for dirpath, dirnames, filenames in os.walk(dependencies_dir):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                for name in sorted(filenames):
                    source = Path(dirpath) / name
                    rel_dep = PurePosixPath(source.relative_to(dependencies_dir).as_posix())
                    _add_file(archive, source, SITE_PACKAGES / rel_dep)
                    dependency_files += 1
    # Replace in one step so a failed build never leaves a half-written package behind.
    partial.replace(out)
    return PackageSummary(path=out, app_files=app_files, dependency_files=dependency_files)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build the certsas Azure Functions deployment zip.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="project directory (default: the repository)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"zip to write (default: ROOT/{DEFAULT_OUT})",
    )
    parser.add_argument(
        "--no-deps",
        action="store_true",
        help="do not pip-install requirements.txt into .python_packages",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    root: Path = args.root
    out: Path = args.out if args.out is not None else root / DEFAULT_OUT
    try:
        if args.no_deps:
            summary = build_package(root, out)
        else:
            with tempfile.TemporaryDirectory(prefix="certsas-deps-") as tmp:
                install_dependencies(root / "requirements.txt", Path(tmp))
                summary = build_package(root, out, dependencies_dir=Path(tmp))
    except (ValueError, OSError, subprocess.CalledProcessError) as exc:
        print(f"build_package: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {summary.path}: {summary.app_files} app files, "
        f"{summary.dependency_files} dependency files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
