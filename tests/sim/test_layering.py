"""The simulators are library code: nothing in tagd.sim imports the command line (the CLI imports them)."""

import ast
from pathlib import Path

import tagd.sim


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_sim_never_imports_the_cli():
    offenders = {p.name: sorted(m for m in imported_modules(p) if m == "tagd.cli" or m.startswith("tagd.cli."))
                 for p in Path(tagd.sim.__file__).parent.glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_cli_registers_both_simulators():
    import argparse

    from tagd.cli import sim

    parser = argparse.ArgumentParser()
    sim.register(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["sim", "acr122", "--tag", "x.nfc"]).func is sim.cmd_acr122
    assert parser.parse_args(["sim", "pn532"]).func is sim.cmd_pn532
