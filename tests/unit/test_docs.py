"""The docs name only what exists: every repository path, `certsas` command and option,
and `make` target that README.md or a page under docs/ shows in code.

Commands and options are read from the parser itself (``build_parser``), so a command
added on another branch is known the moment it is merged, and one renamed or removed
fails here instead of in a reader's terminal. Issue 22 found a dozen such drifts by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from certsas.cli import build_parser
from certsas.cli.completion import subcommands
from tests.support import ROOT

# Made by a command, never tracked: named in the docs as what a step writes.
GENERATED = (".dev/", "dist/", ".venv", "node_modules", "local.settings.json",
             ".python_packages", ".azure/", "bench/results", ".ci/")
PATH_SUFFIXES = (".py", ".md", ".bicep", ".json", ".sh", ".kql", ".yaml", ".yml", ".txt",
                 ".toml", ".in", ".cfg", ".example")
# `certsas decision {...}` and kin are log lines the app writes, not commands.
LOG_PREFIXES = {"decision", "expiry", "expiry-unreadable", "expiry-summary", "expiry-error",
                "startup", "signing"}
# Named as what a test plants, on purpose absent from git (docs/architecture.md).
DECOYS = {"secrets.json", "local.settings.prod.json", "certsas/scratch.py"}
# A bare file name (no folder) is checked only for these: `hello.txt` or `answer.json` in
# an example is data, not a file of the repository.
SOURCE_SUFFIXES = (".py", ".md", ".bicep", ".sh", ".kql")


@dataclass(frozen=True)
class Mention:
    doc: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


@cache
def tracked() -> frozenset[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.splitlines()
    return frozenset(listed)


def docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# A fence may be indented (a block inside a list item); its lines keep their indent.
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
# A span may wrap at a line break, as prose does (Markdown reads the break as a space);
# it never spans a blank line. Read one line at a time, a wrapped span would leave its
# closing backtick to open a "span" of the prose after it, and the next span's command
# (`certsas rotate`, before it existed) would be read as prose and never checked.
INLINE = re.compile(r"`((?:[^`\n]|\n(?![ \t]*\n))+)`")


def code_of(doc: Path) -> Iterator[Mention]:
    """Every piece of code in ``doc``: fenced blocks a logical line at a time (``\\``
    continuations joined), and inline spans (one that wraps, joined by a space)."""
    return code_in(doc.read_text(encoding="utf-8"), str(doc.relative_to(ROOT)))


def code_in(text: str, name: str) -> Iterator[Mention]:
    for block in FENCE.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        logical, start = "", first
        for offset, line in enumerate(block.group(1).splitlines()):
            if not logical:
                start = first + offset
            if line.rstrip().endswith("\\"):
                logical += line.rstrip()[:-1] + " "
                continue
            yield Mention(name, start, _uncommented(logical + line))
            logical = ""
    outside = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for span in INLINE.finditer(outside):
        yield Mention(name, outside.count("\n", 0, span.start()) + 1,
                      re.sub(r"\s*\n\s*", " ", span.group(1)))


def _uncommented(line: str) -> str:
    """A shell line less its comment (`# ...` after a space, or the whole line)."""
    if line.lstrip().startswith("#"):
        return ""
    return re.split(r"\s#\s", line, maxsplit=1)[0]


def mentions() -> list[Mention]:
    return [mention for doc in docs() for mention in code_of(doc)]


# --- paths -------------------------------------------------------------------------------

PATH = re.compile(r"(?<![\w.:/-])((?:[\w-]+/)*[\w.-]+/?)")


def named_paths(mention: Mention) -> Iterator[str]:
    for word in mention.text.split():
        word = word.strip("()[]{},;'\"")
        if "://" in word or word.startswith(("-", "$", "~", "@", "/", "<")) or "<" in word:
            continue
        up = "../" if word.startswith("../") else ""  # relative to a page under docs/
        candidate = PATH.fullmatch(word.removeprefix(up))
        if candidate is None:
            continue
        path = up + candidate.group(1)
        top = path.removeprefix(up).split("/")[0]
        if ("/" in path and (top in _top_level() or path.endswith(PATH_SUFFIXES))) or \
                ("/" not in path and path.endswith(SOURCE_SUFFIXES) and "." in path[1:]):
            yield path


@cache
def _top_level() -> frozenset[str]:
    return frozenset(name.split("/")[0] for name in tracked())


def exists(path: str, doc: str, *, bare_names: bool = True) -> bool:
    if path.startswith(GENERATED) or path in DECOYS:
        return True
    files = tracked()
    clean = path.rstrip("/")
    candidates = [clean, os.path.normpath(Path(doc).parent / clean)]
    for candidate in candidates:
        if candidate in files or any(f.startswith(candidate + "/") for f in files):
            return True
    if bare_names and "/" not in clean:  # a bare file name: some tracked file has it (e.g. `tables.py`)
        return any(f.rsplit("/", 1)[-1] == clean for f in files)
    return False


def test_every_path_the_docs_name_exists() -> None:
    missing = [f"{m} -> {path}" for m in mentions() for path in named_paths(m)
               if not exists(path, m.doc)]
    assert not missing, "\n".join(missing)


# --- certsas commands and options --------------------------------------------------------

# Not inside a string a program prints (`"certsas said no: ..."` in an example).
COMMAND = re.compile(r"(?<![\w./'\"-])certsas((?: +--?[a-z][\w-]*)*) +([a-z][\w-]*|--[a-z][\w-]*)")
# Where a shell command ends inside one logical line; after `--exec --` the options are
# the executed command's, not certsas's.
SEGMENT_END = re.compile(r" \| |&&|\|\||;|\)| #|\$\(| -- ")


@cache
def parser_options() -> tuple[set[str], dict[str, set[str]]]:
    root = build_parser()
    root_options = {flag for action in root._actions for flag in action.option_strings}
    commands = subcommands(root).choices
    return root_options, {name: _flags(sub) for name, sub in commands.items()}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def command_problems(mention: Mention) -> Iterator[str]:
    root_options, commands = parser_options()
    for found in COMMAND.finditer(mention.text):
        word = found.group(2)
        if word in LOG_PREFIXES:
            continue
        for option in found.group(1).split():
            if option not in root_options:
                yield f"{mention} -> certsas {option} is not an option"
        if word.startswith("-"):
            if word not in root_options:
                yield f"{mention} -> certsas {word} is not an option"
            continue
        if word not in commands:
            yield f"{mention} -> certsas {word} is not a command"
            continue
        rest = SEGMENT_END.split(mention.text[found.end():], maxsplit=1)[0]
        for option in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", rest):
            if option not in commands[word]:
                yield f"{mention} -> certsas {word} has no option {option}"


def test_every_certsas_command_and_option_the_docs_name_exists() -> None:
    problems = [p for m in mentions() for p in command_problems(m)]
    assert not problems, "\n".join(problems)


def test_the_log_prefixes_left_out_are_log_lines_the_app_writes() -> None:
    runtime = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "certsas").glob("*.py"))
    for prefix in LOG_PREFIXES:
        assert f'"certsas {prefix} ' in runtime or f'"{prefix}",' in runtime, prefix


# --- make targets ------------------------------------------------------------------------

MAKE = re.compile(r"(?<![\w-])make ([a-z][\w-]*)")


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][\w-]*):", text, re.M))


def test_every_make_target_the_docs_name_exists() -> None:
    targets = make_targets()
    assert {"demo", "test", "deps"} <= targets
    missing = [f"{m} -> make {t}" for m in mentions() for t in MAKE.findall(m.text)
               if t not in targets]
    assert not missing, "\n".join(missing)


# --- the checks themselves ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "problem"), [
    ("certsas lsit", "certsas lsit is not a command"),
    ("certsas list --expring 30", "certsas list has no option --expring"),
    ("certsas register c.pem \\\n  --contianer x", None),  # joined only in fenced blocks
    ("certsas --verison", "certsas --verison is not an option"),
])
def test_a_drifted_command_is_caught(text: str, problem: str | None) -> None:
    found = list(command_problems(Mention("x.md", 1, text)))
    if problem is None:
        assert found and "--contianer" in found[0]
    else:
        assert found and found[0].endswith(problem), found


PROSE = """\
The partner registers its successor itself (`certsas rotation THUMBPRINT
allow` first), with `certsas rotaet --url URL` over mutual TLS; `certsas lsit
--json` wraps too.

1. A step:

   ```bash
   certsas revoke-tokens --subscriptoin ID
   ```
"""


def test_commands_in_wrapped_spans_and_indented_fences_are_caught() -> None:
    found = [p for m in code_in(PROSE, "x.md") for p in command_problems(m)]
    assert found == ["x.md:8:    certsas revoke-tokens --subscriptoin ID -> "
                     "certsas revoke-tokens has no option --subscriptoin",
                     "x.md:2: certsas rotaet --url URL -> certsas rotaet is not a command",
                     "x.md:2: certsas lsit --json -> certsas lsit is not a command"], found


def test_a_drifted_path_is_caught() -> None:
    mention = Mention("README.md", 1, "see tests/loghygiene.py and certsas/ocsp.py")
    missing = [p for p in named_paths(mention) if not exists(p, mention.doc)]
    assert missing == ["tests/loghygiene.py", "certsas/ocsp.py"]
    relative = Mention("docs/x.md", 1, "../infra/queries and ../infra/nothing.kql")
    assert [p for p in named_paths(relative) if not exists(p, relative.doc)] == [
        "../infra/nothing.kql"]


def test_fenced_blocks_are_read_a_logical_line_at_a_time(tmp_path: Path) -> None:
    doc = ROOT / "README.md"
    joined = [m.text for m in code_of(doc) if m.text.startswith("certsas dev-pki .dev/pki")]
    assert joined and "--ocsp-url" in joined[0]


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_relative_link_in_the_docs_leads_to_a_tracked_file() -> None:
    dead = []
    for doc in docs():
        name = str(doc.relative_to(ROOT))
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if "://" not in target and not target.startswith("mailto:") and \
                    not exists(target, name, bare_names=False):
                dead.append(f"{name} -> {target}")
    assert not dead, "\n".join(dead)
