"""Lint openapi.yaml with openapi-spec-validator, Spectral (spectral:oas) and Redocly (recommended).

Prints every finding of the three tools as one table (tool, severity, rule, line, where, message)
so a reviewer reads them at a glance, and fails on any error or warning: a rule we disagree with
is turned off in .spectral.yaml or redocly.yaml with a one-line reason, never ignored here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi.yaml"
NODE_BIN = ROOT / "node_modules" / ".bin"
SPECTRAL_SEVERITIES = {0: "error", 1: "warn", 2: "info", 3: "hint"}


@dataclass(frozen=True)
class Finding:
    tool: str
    severity: str
    rule: str
    line: int
    where: str
    message: str


def run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if not result.stdout.strip():
        raise SystemExit(f"{command[0]} printed nothing (exit {result.returncode}):\n{result.stderr}")
    return result.stdout


def openapi_spec_validator() -> list[Finding]:
    spec, _ = read_from_filename(str(SPEC))
    try:
        validate(spec)
    except Exception as exc:  # the validator raises one error describing the first problem
        return [
            Finding("openapi-spec-validator", "error", type(exc).__name__, 0, "", str(exc).splitlines()[0])
        ]
    return []


def spectral() -> list[Finding]:
    output = run([str(NODE_BIN / "spectral"), "lint", str(SPEC), "--format", "json", "--quiet"])
    return [
        Finding(
            "spectral",
            SPECTRAL_SEVERITIES.get(item["severity"], str(item["severity"])),
            item["code"],
            item["range"]["start"]["line"] + 1,
            "/".join(str(part) for part in item["path"]),
            item["message"],
        )
        for item in json.loads(output[output.index("[") :])
    ]


def redocly() -> list[Finding]:
    output = run([str(NODE_BIN / "redocly"), "lint", str(SPEC), "--format", "json"])
    report = json.loads(output[output.index("{") :])
    return [
        Finding(
            "redocly",
            problem["severity"],
            problem["ruleId"],
            problem["location"][0].get("start", {}).get("line", 0),
            problem["location"][0]["pointer"],
            problem["message"],
        )
        for problem in report["problems"]
    ]


def main() -> int:
    console = Console()
    findings = openapi_spec_validator() + spectral() + redocly()
    if not findings:
        tools = "openapi-spec-validator, spectral:oas, redocly recommended"
        console.print(f"openapi.yaml: [green]clean[/green] under {tools}")
        return 0
    table = Table(title=f"openapi.yaml: {len(findings)} finding(s)", show_lines=False)
    for column in ("tool", "severity", "rule", "line", "where", "message"):
        table.add_column(column, overflow="fold")
    for f in sorted(findings, key=lambda f: (f.line, f.tool)):
        colour = "red" if f.severity == "error" else "yellow"
        table.add_row(f.tool, f"[{colour}]{f.severity}[/{colour}]", f.rule, str(f.line), f.where, f.message)
    console.print(table)
    return 1


if __name__ == "__main__":
    sys.exit(main())
