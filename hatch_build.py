"""Wheel build hook: compile csrc/vexp.c into relcal/libvexp.so.1 when it can.

The library is optional.  On Linux x86_64 with a C compiler and glibc's libmvec
it makes relcal's float64 exp ~3x faster (relcal/kernel.py); anywhere else, or
when compiling fails, the build goes on with a warning and relcal uses numpy's
exp.  Set RELCAL_BUILD_KERNEL=0 to skip it.

A standard wheel carries the library.  The library does not link Python, so the
wheel is tagged for any Python 3 on this platform: py3-none-manylinux_2_X_x86_64,
X the highest GLIBC_2.X symbol version the library needs (readelf), when it
needs nothing beyond libc/libm/libmvec; py3-none-linux_x86_64 when that cannot
be read.  Without the library the wheel stays py3-none-any.  An editable install
builds it next to the sources, where relcal/kernel.py looks.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("csrc") / "vexp.c"
TARGET = "relcal/libvexp.so.1"


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        why = _unsupported()
        if why:
            self.app.display_info(f"relcal: no exp kernel ({why}); numpy's exp is used")
            return
        root = Path(self.root)
        if version == "editable":
            out = root / TARGET
        else:
            self._tmp = tempfile.mkdtemp(prefix="relcal-kernel-")
            out = Path(self._tmp) / "libvexp.so.1"
        error = _compile(root / SOURCE, out)
        if error:
            self.app.display_warning(
                f"relcal: the exp kernel did not build, numpy's exp is used: {error}"
            )
            return
        if version != "editable":
            build_data["force_include"][str(out)] = TARGET
            build_data["pure_python"] = False
            build_data["tag"] = f"py3-none-{_platform_tag(out)}"

    def finalize(
        self, version: str, build_data: dict[str, Any], artifact_path: str
    ) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _unsupported() -> str:
    if os.environ.get("RELCAL_BUILD_KERNEL", "1") == "0":
        return "RELCAL_BUILD_KERNEL=0"
    if not sys.platform.startswith("linux"):
        return f"libmvec is glibc's, this is {sys.platform}"
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"an AVX2 kernel, this is {platform.machine()}"
    return ""


def _compile(source: Path, out: Path) -> str:
    """Compile and link; '' on success, else the reason."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        return f"no C compiler ({cc[0] if cc else 'CC is empty'})"
    cmd = [*cc, "-O2", "-fPIC", "-shared", str(source), "-o", str(out), "-lmvec"]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    if run.returncode != 0:
        lines = (run.stderr or run.stdout).strip().splitlines()
        return lines[-1] if lines else f"{cc[0]} exited with {run.returncode}"
    return ""


GLIBC_LIBS = {"libc.so.6", "libm.so.6", "libmvec.so.1"}


def _platform_tag(lib: Path) -> str:
    """manylinux_2_X_x86_64 from the library's needs, else linux_x86_64."""
    level = glibc_level(lib)
    return f"manylinux_2_{level}_x86_64" if level else "linux_x86_64"


def glibc_level(lib: Path) -> int | None:
    """Highest GLIBC_2.X the library needs, None when unsure or it needs more."""
    readelf = shutil.which("readelf")
    if readelf is None:
        return None
    try:
        dyn = subprocess.run([readelf, "-d", str(lib)], capture_output=True,
                             text=True, timeout=30)
        ver = subprocess.run([readelf, "--version-info", str(lib)],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn.stdout))
    if dyn.returncode or ver.returncode or not needed <= GLIBC_LIBS:
        return None
    levels = [int(m) for m in re.findall(r"Name: GLIBC_2\.(\d+)\b", ver.stdout)]
    return max(levels) if levels else None
