"""The published AsyncAPI document passes the AsyncAPI initiative's own parser (@asyncapi/parser, from npm), not
only our own checks of it (tests/unit/test_asyncapi.py): what `make asyncapi-check` runs, inside `make test`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "schemas" / "tools"


def test_the_asyncapi_document_has_no_error_by_the_asyncapi_parser() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node and npm are needed for this check: `make system` installs Debian's nodejs and npm"
    work = REPO / ".cache" / "asyncapi"
    work.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "validate-asyncapi.mjs"):
        shutil.copy(TOOLS / name, work / name)
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=work, check=True, timeout=600)
    checked = subprocess.run(
        [node, "validate-asyncapi.mjs", str(REPO / "schemas" / "asyncapi.json")],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " 0 errors" in checked.stdout
