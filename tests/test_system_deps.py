"""tools/ensure-system-deps.sh, the set-up step of `make test`: what it does on each machine.

The script's checked paths are pointed at a temporary folder (CHROMIUM_PATH, PROMETHEUS_PATH)
and PATH holds only the commands a case needs, so no case installs anything. The paths where
it would install (root, password-less sudo) are not run here: they change the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "ensure-system-deps.sh"
APT_GET = shutil.which("apt-get") or "/usr/bin/apt-get"


@pytest.fixture
def world() -> Iterator[Path]:
    """A folder any user can read: ``bin/`` is the PATH, ``opt/`` holds the checked binaries."""
    root = Path(tempfile.mkdtemp(prefix="ensure-deps-"))
    try:
        for p in (root, root / "bin", root / "opt"):
            p.mkdir(exist_ok=True)
            p.chmod(0o755)
        yield root
    finally:
        shutil.rmtree(root)


def _run(world: Path) -> subprocess.CompletedProcess[str]:
    """Run the script as a user who is not root (``nobody`` when the tests run as root)."""
    env = {
        "PATH": str(world / "bin"),
        "CHROMIUM_PATH": str(world / "opt" / "chromium"),
        "PROMETHEUS_PATH": str(world / "opt" / "prometheus"),
    }
    as_user: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run the script as a non-root user"
        as_user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run(
        [*as_user, "/bin/bash", str(SCRIPT)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _executable(path: Path, body: str = "exit 0") -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_nothing_to_do_when_both_are_there(world: Path) -> None:
    _executable(world / "opt" / "chromium")
    _executable(world / "opt" / "prometheus")
    res = _run(world)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_not_root_without_sudo_prints_the_one_command_and_stops(world: Path) -> None:
    (world / "bin" / "apt-get").symlink_to(APT_GET)
    _executable(world / "opt" / "prometheus")
    res = _run(world)
    assert res.returncode == 1
    assert res.stderr.splitlines()[-1].strip() == (
        "su -c 'apt-get update -q && apt-get install -y -q --no-install-recommends chromium'"
    )
    assert str(world / "opt" / "chromium") in res.stderr


def test_not_root_with_sudo_asking_a_password_prints_the_sudo_command(world: Path) -> None:
    (world / "bin" / "apt-get").symlink_to(APT_GET)
    # what `sudo -n true` does when sudo needs a password: fails without prompting
    _executable(world / "bin" / "sudo", 'echo "sudo: a password is required" >&2; exit 1')
    res = _run(world)
    assert res.returncode == 1
    assert res.stderr.splitlines()[-1].strip() == (
        "sudo sh -c 'apt-get update -q && "
        "apt-get install -y -q --no-install-recommends chromium prometheus'"
    )
    assert "password is required" not in res.stderr


def test_no_apt_get_says_what_is_missing(world: Path) -> None:
    _executable(world / "opt" / "chromium")
    res = _run(world)
    assert res.returncode == 1
    assert "no apt-get here: install prometheus" in res.stderr
