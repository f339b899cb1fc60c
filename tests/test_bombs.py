"""Decompression and declared-size bombs: each is refused with one typed one-line error, and
reading it costs no more than 200 MiB of peak memory over reading a normal film. Peak memory
is the high-water RSS (VmHWM) of a fresh child process that only imports the reader and reads
one file."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pneumo.qa.hostile_bytes import PHI_STRINGS, bombs, dicom_bytes

MAX_EXTRA_MIB = 200
_CHILD = r"""
import json, resource, sys
from pneumo.errors import ImageError, UnsupportedImageError
from pneumo.data.imaging import read_image
out = {}
try:
    xray = read_image(sys.argv[1])
    out["accepted"] = list(xray.pixels.shape)
except ImageError as err:
    out["error"], out["message"] = type(err).__name__, str(err)
except BaseException as err:
    out["crash"] = f"{type(err).__name__}: {str(err)[:300]}"
try:   # VmHWM: this process's own high-water mark (ru_maxrss keeps the parent's across exec)
    with open("/proc/self/status") as fh:
        out["peak_mib"] = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024
except OSError:
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _read_in_child(path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def normal_peak(tmp_path_factory) -> float:
    path = tmp_path_factory.mktemp("normal") / "normal-2048.dcm"
    path.write_bytes(dicom_bytes(2048, 2048))   # a normal 2048 x 2048 12-bit film
    got = _read_in_child(path)
    assert got.get("accepted") == [2048, 2048], got
    return got["peak_mib"]


@pytest.mark.parametrize("name", sorted(bombs()))
def test_bomb_is_refused_within_memory(name, normal_peak, tmp_path):
    path = tmp_path / name
    path.write_bytes(bombs()[name]())
    got = _read_in_child(path)
    assert "crash" not in got and "accepted" not in got, got
    assert got["error"] in ("ImageError", "UnsupportedImageError"), got
    message = got["message"]
    assert message and "\n" not in message and message == message.strip(), got
    assert not any(p.lower() in message.lower() for p in PHI_STRINGS), message
    extra = got["peak_mib"] - normal_peak
    print(f"{name}: peak {got['peak_mib']:.0f} MiB (normal film {normal_peak:.0f} MiB, extra {extra:+.0f})")
    assert extra <= MAX_EXTRA_MIB, f"{name} took {extra:.0f} MiB over a normal film: {message}"
