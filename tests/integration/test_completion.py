"""``certsas completion bash|zsh``: the scripts complete what the parser has, in real shells."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from certsas.cli import build_parser
from certsas.cli.completion import Subparsers, subcommands, walk
from tests.support.cli import run
from tests.support.required import require


def script(capsys: pytest.CaptureFixture[str], shell: str, folder: Path) -> Path:
    code, out, err = run(capsys, "completion", shell)
    assert code == 0, err
    path = folder / f"certsas.{shell}"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def bash_complete(completion: Path, line: str) -> list[str]:
    """What bash offers for TAB at the end of ``line`` (as COMP_WORDS splits it)."""
    words = line.split(" ")
    program = textwrap.dedent(f"""\
        source {completion}
        COMP_WORDS=({" ".join(f"'{w}'" for w in words)})
        COMP_CWORD={len(words) - 1}
        _certsas 2>/dev/null
        printf '%s\\n' "${{COMPREPLY[@]}}"
        """)
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True,
                          check=True, timeout=30)
    return [word for word in done.stdout.splitlines() if word]


def test_bash_completes_commands_options_choices_and_files(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    completion = script(capsys, "bash", tmp_path)
    commands = [command.name for command in walk(_subparsers())]
    assert {"register", "list", "show", "disable", "audit", "completion"} <= set(commands)
    assert set(bash_complete(completion, "certsas ")) == {*commands, "--help", "--version"}
    assert bash_complete(completion, "certsas reg") == ["register"]
    assert bash_complete(completion, "certsas register x.pem --max") == ["--max-ttl-minutes"]
    assert bash_complete(completion, "certsas completion ") == ["bash", "zsh"]
    assert bash_complete(completion, "certsas list --") == ["--help", "--expiring", "--json"]
    assert bash_complete(completion, "certsas show ") == []  # a thumbprint: nothing to guess
    assert bash_complete(completion, "certsas register --container ") == []
    (tmp_path / "client.pem").write_text("x")
    assert bash_complete(completion, f"certsas register {tmp_path}/cli") == [
        f"{tmp_path}/client.pem"]
    # Every option of every command is offered after its command.
    for command in walk(_subparsers()):
        assert set(bash_complete(completion, f"certsas {command.name} -")) == set(command.flags)


def _subparsers() -> Subparsers:
    return subcommands(build_parser())


ZSH_HARNESS = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='> '; autoload -U compinit; compinit -u -D; source $1; certsas() { :; }"
zpty -w z "zstyle ':completion:*' menu no"
zpty -n -w z "$2"$'\t'
sleep 1
zpty -n -w z $'\C-e#END\n'
sleep 0.5
zpty -w z 'print -r -- "LINE:$history[$((HISTCMD-1))]"'
sleep 0.5
local out line
while zpty -rt z line; do out+=$line; done
print -r -- "$out"
zpty -d z
"""


def zsh_complete(completion: Path, harness: Path, line: str) -> str:
    """The line zsh shows after TAB at the end of ``line`` (typed into an interactive zsh)."""
    done = subprocess.run(["zsh", "-f", str(harness), str(completion), line],
                          capture_output=True, text=True, check=True, timeout=30)
    found = [part for part in done.stdout.split("LINE:")[1:] if "#END" in part]
    assert found, done.stdout
    # zsh drops the space it added after a completed word when '#' is typed: compare words.
    return found[-1].split("#END")[0].rstrip()


def test_zsh_completes_commands_options_and_choices(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    require(shutil.which("zsh"), "zsh")
    completion = script(capsys, "zsh", tmp_path)
    harness = tmp_path / "harness.zsh"
    harness.write_text(ZSH_HARNESS, encoding="utf-8")
    assert zsh_complete(completion, harness, "certsas regi") == "certsas register"
    assert zsh_complete(completion, harness, "certsas register x.pem --max-t") == \
        "certsas register x.pem --max-ttl-minutes"
    assert zsh_complete(completion, harness, "certsas completion z") == "certsas completion zsh"
    assert zsh_complete(completion, harness, "certsas audit --sin") == "certsas audit --since"
