"""The packaged app: build it with the README command, unpack the download, run it read-only.

Slow (a PyInstaller build plus an xz archive: several minutes on 2 cores); CI runs it.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def manifest(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in folder.rglob("*")}


def set_writable(folder: Path, writable: bool) -> None:
    bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod((mode | stat.S_IWUSR) if writable else (mode & ~bits))


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CI build is the Linux one")
def test_packaged_app_predicts_and_trains_from_a_read_only_unpacked_download(tmp_path):
    built = subprocess.run([sys.executable, "dev.py", "package", "--dist", str(tmp_path / "dist"),
                            "--work", str(tmp_path / "work")], cwd=ROOT, capture_output=True,
                           text=True, timeout=1500)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-4000:]
    sizes = re.findall(r"^(bundle|archive): +(\S+) +([\d,]+) MB", built.stdout, re.MULTILINE)
    assert [kind for kind, _path, _mb in sizes] == ["bundle", "archive"], built.stdout
    archive = Path(sizes[1][1])
    modules = re.findall(r"\('([\w.]+)',", (tmp_path / "work" / "build" / "PYZ-00.toc").read_text())
    assert "desktop.self_test" in modules and "keras.src.layers" in modules
    shipped_tests = [m for m in modules if m.startswith(("keras.", "tensorflow.", "h5py."))
                     and (m.endswith("_test") or ".tests" in m)]
    assert not shipped_tests, f"{len(shipped_tests)} libraries' unit tests are in the app"
    assert archive.name.endswith(".tar.xz") and archive.stat().st_size > 0

    # What a user does: unpack the download and start the executable in the folder it makes.
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="tar")
    app = unpacked / "PixelClassifier" / "PixelClassifier"
    assert os.access(app, os.X_OK)
    before = manifest(unpacked)
    set_writable(unpacked, False)
    xdg = {name: tmp_path / "user" / name.lower() for name in
           ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELCLASSIFIER_")}
    env.update({k: str(v) for k, v in xdg.items()}, QT_QPA_PLATFORM="offscreen",
               HOME=str(tmp_path / "user"))
    try:
        proc = subprocess.run([str(app), "--self-test"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        set_writable(unpacked, True)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-4000:]
    assert "self-test: sample-ship.jpg: ship" in out  # the bundled checkpoint, right answer
    assert re.search(r"self-test: trained 1 epoch\(s\) on ", out)  # training works frozen
    assert "with the new checkpoint" in out  # and the checkpoint it saved loads and predicts
    home = re.search(r"self-test: scratch home (\S+)", out).group(1)
    assert Path(home).is_relative_to(xdg["XDG_CACHE_HOME"])  # per-user folders, not the bundle
    assert manifest(unpacked) == before, "the app wrote inside its own folder"
