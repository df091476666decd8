"""A training run records which code trained it, and says how that is known (issue 7 "record a real code
version"): the git commit, a build id from the environment, or a hash of the installed distribution."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clinaiops.env import ConfigurationError
from inference.services.training import code_version, distribution_sha256, source_tree_sha256

PACKAGE_VERSION = importlib.metadata.version("clinaiops")


def _git(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=directory, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_in_a_git_checkout_the_commit_is_recorded(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    settings.BASE_DIR = tmp_path
    monkeypatch.setenv("CLINAIOPS_BUILD", "ignored-when-git-knows")

    assert code_version() == f"git:{_git(tmp_path, 'rev-parse', '--short=12', 'HEAD')}"


def test_without_git_the_build_id_from_the_environment_is_recorded_with_the_package_version(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BASE_DIR = tmp_path  # not a checkout
    monkeypatch.setenv("CLINAIOPS_BUILD", "ci-2026.12.01-7")

    assert code_version() == f"build:ci-2026.12.01-7+package:{PACKAGE_VERSION}"

    monkeypatch.setenv("CLINAIOPS_BUILD", "not a build id; rm -rf")
    with pytest.raises(ConfigurationError, match="CLINAIOPS_BUILD"):
        code_version()


def test_without_git_or_a_build_id_the_installed_distribution_is_hashed(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BASE_DIR = tmp_path
    monkeypatch.delenv("CLINAIOPS_BUILD", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git binary at all

    recorded = code_version()

    assert recorded == f"package:{PACKAGE_VERSION}+sha256:{distribution_sha256()[:16]}"
    assert recorded != PACKAGE_VERSION and len(recorded) <= 64


def test_the_distribution_hash_changes_with_any_file_and_ignores_bytecode(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "templates").mkdir()
    (package / "templates" / "page.html").write_text("<p>one</p>")
    first = source_tree_sha256([package])

    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert source_tree_sha256([package]) == first
    (package / "templates" / "page.html").write_text("<p>two</p>")
    assert source_tree_sha256([package]) != first
