"""Which GPU architectures a wheel (or shared library) carries: native code (cubin) and PTX, per SM.

    python bench/cuda_archs.py faiss_gpu-1.15.1-*.whl [more wheels or .so files]

Reads the CUDA fat binaries embedded in each shared library: every fat binary starts with the magic
0xBA55ED50, then entries of kind 1 (PTX, compiled by the driver at load time for that SM or newer)
or 2 (cubin, native code for exactly that SM family). A GPU runs a library when it holds a cubin of
its SM (H100 / H200: 90) or PTX of an SM at or below it; otherwise CUDA answers "no kernel image is
available for execution on the device". Nothing is imported or run, so this works on a machine
without a GPU: get the wheel with ``pip download --no-deps --only-binary=:all: PACKAGE==VERSION``.
"""

from __future__ import annotations

import argparse
import collections
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

MAGIC = struct.pack("<I", 0xBA55ED50)
KINDS = {1: "ptx", 2: "cubin"}


def fatbin_entries(data: bytes) -> collections.Counter[tuple[str, int]]:
    """(kind, SM) -> how many fat-binary entries of ``data`` carry it."""
    found: collections.Counter[tuple[str, int]] = collections.Counter()
    start = data.find(MAGIC)
    while start != -1:
        try:
            header_size = struct.unpack_from("<H", data, start + 6)[0]
            size = struct.unpack_from("<Q", data, start + 8)[0]
            if header_size == 16 and 0 < size < 1 << 31:
                pos, end = start + 16, start + 16 + size
                while pos < end:
                    kind, _version, entry_header = struct.unpack_from("<HHI", data, pos)
                    payload = struct.unpack_from("<Q", data, pos + 8)[0]
                    sm = struct.unpack_from("<I", data, pos + 28)[0]
                    if kind not in KINDS or not 32 <= entry_header <= 256:
                        break
                    found[(KINDS[kind], sm)] += 1
                    pos += entry_header + payload
        except struct.error:
            pass
        start = data.find(MAGIC, start + 4)
    return found


def libraries(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every shared library in a wheel, or of the one file given."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if ".so" in name.rsplit("/", 1)[-1]:
                    yield name, z.read(name)
    else:
        yield path.name, path.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", type=Path, nargs="+", help="wheels or shared libraries")
    ap.add_argument("--sm", type=int, default=90, help="the GPU's SM to check for (H100 / H200: 90)")
    args = ap.parse_args()
    for path in args.paths:
        total: collections.Counter[tuple[str, int]] = collections.Counter()
        for name, data in libraries(path):
            entries = fatbin_entries(data)
            if entries:
                total.update(entries)
                print(f"{path.name}: {name}")
        cubins = sorted({sm for kind, sm in total if kind == "cubin"})
        ptx = sorted({sm for kind, sm in total if kind == "ptx"})
        runs = args.sm in cubins or any(sm <= args.sm for sm in ptx)
        print(f"  cubin SMs: {cubins or '-'}  PTX SMs: {ptx or '-'}  runs on sm_{args.sm}: {'yes' if runs else 'NO'}")


if __name__ == "__main__":
    main()
