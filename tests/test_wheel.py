"""The built wheel: tagged for any Python 3 on its platform, pure without the kernel."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build(tmp_path: Path, kernel: bool) -> Path:
    pytest.importorskip("hatchling", reason="--no-build-isolation needs hatchling")
    env = dict(os.environ, RELCAL_BUILD_KERNEL="1" if kernel else "0")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = tmp_path.glob("relcal-*.whl")
    return wheel


def _wheel_meta(zf: zipfile.ZipFile) -> str:
    (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/WHEEL")]
    return zf.read(name).decode()


def _compiler() -> bool:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    return bool(cc) and shutil.which(cc[0]) is not None


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
    reason="the exp kernel is built only on Linux x86_64",
)
@pytest.mark.skipif(not _compiler(), reason="no C compiler to build the exp kernel")
def test_wheel_with_kernel_is_py3_platform(tmp_path):
    wheel = _build(tmp_path, kernel=True)
    tag = re.fullmatch(r"relcal-[^-]+-(.+)\.whl", wheel.name).group(1)
    assert re.fullmatch(r"py3-none-(manylinux_2_\d+_x86_64|linux_x86_64)", tag), tag
    with zipfile.ZipFile(wheel) as zf:
        meta = _wheel_meta(zf)
        names = zf.namelist()
    assert "Root-Is-Purelib: false" in meta
    assert f"Tag: {tag}" in meta.splitlines()
    assert "relcal/libvexp.so.1" in names
    assert any(n.startswith("relcal/templates/") for n in names)


def test_wheel_without_kernel_is_pure(tmp_path):
    wheel = _build(tmp_path, kernel=False)
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        meta = _wheel_meta(zf)
        names = zf.namelist()
    assert "Root-Is-Purelib: true" in meta
    assert "Tag: py3-none-any" in meta.splitlines()
    assert "relcal/libvexp.so.1" not in names
    assert any(n.startswith("relcal/templates/") for n in names)


def _hook_module():
    pytest.importorskip("hatchling", reason="hatch_build.py imports hatchling")
    import importlib.util

    path = ROOT / "hatch_build.py"
    spec = importlib.util.spec_from_file_location("relcal_hatch_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_platform_tag_falls_back_without_readelf(tmp_path, monkeypatch):
    hook = _hook_module()
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"\x7fELF")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert hook.glibc_level(lib) is None
    assert hook._platform_tag(lib) == "linux_x86_64"


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf not installed")
def test_platform_tag_refuses_a_library_that_needs_more(tmp_path):
    hook = _hook_module()
    # this interpreter's binary links libpython on most builds: not manylinux-able
    lib = Path(sys.executable).resolve()
    needed = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True)
    libs = set(re.findall(r"Shared library: \[([^\]]+)\]", needed.stdout))
    if libs <= hook.GLIBC_LIBS:
        pytest.skip(f"{lib} needs only {sorted(libs)}")
    assert hook.glibc_level(lib) is None
