"""One command line for every package: `python -m <package> <verb> --config FILE [key=value ...]`.

A package lists its verbs once (`Verb(name, "module:function", help)`); `run_verbs` answers `--help` with
them and hands the rest of the command line to the verb's function, which parses it with
`runtime.config.config_from_cli` (so `<verb> --help` lists that verb's config keys). Verb modules are
imported only when called: `--help` stays fast and one verb's heavy imports never slow another.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.config import ConfigError


@dataclass(frozen=True)
class Verb:
    name: str
    entry: str  # "package.module:function"; function(argv: list[str]) -> int
    help: str


def usage(prog: str, doc: str, verbs: Sequence[Verb]) -> str:
    width = max(len(v.name) for v in verbs)
    lines = [f"usage: {prog} <verb> --config FILE [key=value ...]", "", doc.strip(), "", "verbs:"]
    lines += [f"  {v.name:<{width}}  {v.help}" for v in verbs]
    lines += ["", f"`{prog} <verb> --help` lists the verb's config keys."]
    return "\n".join(lines)


def run_verbs(prog: str, doc: str, verbs: Sequence[Verb], argv: list[str] | None = None) -> int:
    """Dispatch `argv` (default sys.argv[1:]) to its verb; 2 on an unknown verb or a bad config."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(prog, doc, verbs))
        return 0 if argv else 2
    by_name = {v.name: v for v in verbs}
    verb = by_name.get(argv[0])
    if verb is None:
        print(f"{prog}: unknown verb '{argv[0]}'; verbs: {', '.join(by_name)}", file=sys.stderr)
        return 2
    module, func = verb.entry.split(":")
    sys.argv[0] = f"{prog} {verb.name}"  # argparse names the verb in its usage and errors
    try:
        return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
