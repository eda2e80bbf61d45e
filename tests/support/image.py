"""The container image without a Docker engine: the Dockerfile read, its builder stage replayed."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.commands import run

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(stage index, INSTRUCTION, arguments) with continuations joined."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stage = -1
    result: list[tuple[int, str, str]] = []
    for entry in logical:
        instruction, _, args = entry.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stage += 1
        result.append((stage, instruction, args.strip()))
    return result


def dockerfile_build_steps() -> list[tuple[str, str]]:
    """The builder stage's WORKDIR/COPY/RUN steps, in order."""
    return [
        (ins, args)
        for stage, ins, args in dockerfile_instructions(DOCKERFILE.read_text("utf-8"))
        if stage == 0 and ins in {"WORKDIR", "COPY", "RUN"}
    ]


def _copy_into(source: Path, workdir: Path, dest: str, *, many: bool) -> None:
    """Docker COPY semantics: a folder's contents, or a file to a path or folder."""
    target = workdir / dest
    if source.is_dir():
        shutil.copytree(
            source,
            target,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        return
    if many or dest.endswith("/"):
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def build_image_venv(tmp_path: Path) -> Path:
    """Replay the Dockerfile's builder stage into `tmp_path`; return the venv.

    COPY steps copy from the repository into a build directory, as the docker
    build context would; `python -m venv /opt/venv` and `/opt/venv/bin/pip
    install ...` run against a venv under `tmp_path` instead. Any other step
    fails, so the Dockerfile cannot grow a step this replay silently skips.
    """
    python = shutil.which("python3.11") or sys.executable
    venv = tmp_path / "venv"
    workdir = tmp_path / "build"
    workdir.mkdir()
    for instruction, args in dockerfile_build_steps():
        if instruction == "WORKDIR":
            continue  # everything is relative to `workdir`
        if instruction == "COPY":
            *sources, dest = shlex.split(args)
            for source in sources:
                _copy_into(ROOT / source, workdir, dest, many=len(sources) > 1)
            continue
        words = shlex.split(args)
        if words == ["python", "-m", "venv", "/opt/venv"]:
            run(python, "-m", "venv", str(venv))
        elif words[:3] == ["/opt/venv/bin/pip", "install", "--no-cache-dir"]:
            run(
                str(venv / "bin/python"),
                "-m",
                "pip",
                "install",
                *words[2:],
                cwd=workdir,
            )
        else:
            pytest.fail(
                f"build_image_venv does not know this Dockerfile step: RUN {args}"
            )
    return venv
