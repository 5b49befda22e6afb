"""Print `name==version` for every runtime dependency of the project, as installed in this interpreter's env.

Run by infra/images/build.sh with the development venv's Python: the services image then runs the versions
that were tested here. Only the closure of [project].dependencies is pinned (not pytest, ruff, ...), so a
change to a development tool neither changes the image nor fetches the wheels again.

    python infra/images/services/pins.py pyproject.toml > constraints.txt
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def wanted(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def closure(roots: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    todo = [(Requirement(root), set[str]()) for root in roots]
    while todo:
        requirement, parent_extras = todo.pop()
        if not wanted(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        if name in pins:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"pins: {requirement.name} is not installed in {sys.prefix}: run `make install` first")
        pins[name] = dist.version
        todo += [(Requirement(text), set(requirement.extras)) for text in dist.requires or ()]
    return pins


def main() -> None:
    project = tomllib.loads(Path(sys.argv[1]).read_text())["project"]
    for name, version in sorted(closure(project["dependencies"]).items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
