"""The package a user installs: one import name, the command line, a self-contained tree."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a path outside the repository looks like (built up, so this file holds neither).
OUTSIDE = ("../" + "shared", "parents[2]" + ".parent")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_installed_under_cartwatch():
    folders = sorted(
        "cartwatch." + str(init.parent.relative_to(ROOT)).replace("/", ".")
        for top in ("streams", "models", "alerts")
        for init in (ROOT / top).rglob("__init__.py")
    )
    assert PYPROJECT["tool"]["setuptools"]["packages"] == folders


def test_the_wheel_installs_one_top_level_name_and_no_generic_ones(tmp_path: Path):
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "-q", "-w", wheels, ROOT], check=True)
    (wheel,) = wheels.glob("cartwatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        (top_level,) = [n for n in archive.namelist() if n.endswith("top_level.txt")]
        assert archive.read(top_level).decode().split() == ["cartwatch"]
    assert {t for t in top if not t.endswith(".dist-info")} == {"cartwatch"}
    with zipfile.ZipFile(wheel) as archive:  # the desk's templates travel with its code
        templates = {n for n in archive.namelist() if "/desk/templates/" in n}
    shipped = {p.name for p in (ROOT / "streams/http/desk/templates").iterdir()}
    assert {n.rsplit("/", 1)[1] for n in templates} == shipped
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "-q", wheel], check=True)
    cwd = tmp_path  # not the repository, whose folders are named streams/, models/...
    assert subprocess.run([python, "-c", "import models"], cwd=cwd).returncode != 0
    assert subprocess.run([python, "-c", "import streams"], cwd=cwd).returncode != 0
    ok = [python, "-c", "import cartwatch.models.errors, cartwatch.streams, cartwatch.alerts"]
    assert subprocess.run(ok, cwd=cwd).returncode == 0


def test_the_command_and_the_module_both_answer_help(tmp_path: Path):
    script = Path(sys.executable).parent / "cartwatch"
    for command in ([script, "--help"], [sys.executable, "-m", "cartwatch.streams", "--help"]):
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
        assert "usage: cartwatch" in done.stdout and "replay" in done.stdout


def test_nothing_in_the_repository_reads_a_path_outside_it():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in set(tracked) - {str(Path(__file__).relative_to(ROOT))}:  # this test names them
        path = ROOT / name
        if path.suffix in {".py", ".toml", ".cfg"} or path.name in {"Makefile", "run"}:
            text = path.read_text(encoding="utf-8")
            if any(outside in text for outside in OUTSIDE):
                offenders.append(name)
    assert offenders == []
