"""The build's exact vectors on disk: a float32 .npy file (one row per vector, in entry order) read with
os.pread of just the rows a search needs, so a large store never holds or maps its vectors whole.

`VectorFile` answers the faiss-like calls the rest of the code makes on a build's vectors (`ntotal`, `d`,
`reconstruct_n`, `reconstruct_batch`), as the PostgreSQL store's `StoredVectors` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

DTYPE = np.dtype("<f4")
# A batch of this many separate runs or more (any batch but a single run) is announced to the kernel before it
# is read (posix_fadvise WILLNEED): from a cold page cache the disk then fetches the runs concurrently instead of
# one seek after another. A 1M-entry store re-scores ~2,000 scattered vectors a query from a 21 GB file; at 100k,
# every file evicted before each search, p95 433 → 177 ms; with the files cached the advice costs nothing measurable.
ANNOUNCED_RUNS = 2
# A vector file up to this size is read whole when opened (the real corpus's: a few MB): its rows then cost a
# search no system call at all, where reading a query's ~140 scattered candidate rows one run at a time took
# about a third of the rerank stage.
RESIDENT_BYTES = 64 << 20


class VectorFileError(ValueError):
    """The vector file is not a float32 matrix in row-major order, or holds other rows than announced."""


def write_vector_file(path: Path, blocks: Iterable[np.ndarray], count: int, dim: int) -> None:
    """Write `count` vectors of `dim` floats, given block by block (never held whole)."""
    written = 0
    with open(path, "wb") as out:
        np.lib.format.write_array_header_1_0(out, {"descr": DTYPE.str, "fortran_order": False, "shape": (count, dim)})
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=DTYPE)
            if block.ndim != 2 or block.shape[1] != dim:
                raise VectorFileError(f"a block of shape {block.shape} in a file of {dim}-dimensional vectors")
            out.write(block.tobytes())
            written += len(block)
    if written != count:
        raise VectorFileError(f"{path}: {written} vectors written, {count} announced")


class VectorFile:
    """Rows of a vector file, read on demand."""

    def __init__(self, path: Path, resident_bytes: int = 0) -> None:
        """`resident_bytes`: read the file whole, once, if its vectors take at most this many bytes."""
        self._fd = -1
        self._resident: np.ndarray | None = None
        with open(path, "rb") as handle:
            np.lib.format.read_magic(handle)
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            self._offset = handle.tell()
        if fortran or dtype != DTYPE or len(shape) != 2:
            raise VectorFileError(f"{path} is not a row-major float32 matrix ({dtype}, shape {shape})")
        self.ntotal, self.d = int(shape[0]), int(shape[1])
        self._row_bytes = self.d * DTYPE.itemsize
        if os.path.getsize(path) != self._offset + self.ntotal * self._row_bytes:
            raise VectorFileError(f"{path} is truncated or too long for {self.ntotal} vectors")
        self._fd = os.open(path, os.O_RDONLY)
        if self.ntotal * self._row_bytes <= resident_bytes:
            self._resident = self._read_run(0, self.ntotal)
            self.close()

    def reconstruct_n(self, start: int, count: int) -> np.ndarray:
        """`count` consecutive vectors from position `start`, in one read (below 2 GiB)."""
        start, count = int(start), max(0, min(int(count), self.ntotal - int(start)))
        if self._resident is not None:
            return self._resident[start : start + count].copy()
        return self._read_run(start, count)

    def reconstruct_batch(self, positions) -> np.ndarray:
        """The vectors at `positions`, in that order; each run of consecutive positions is one read."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if len(positions) and (positions.min() < 0 or positions.max() >= self.ntotal):
            raise IndexError(f"vector positions outside 0..{self.ntotal - 1}")
        if self._resident is not None:
            return self._resident[positions]
        out = np.empty((len(positions), self.d), dtype=np.float32)
        if not len(positions):
            return out
        wanted, where = np.unique(positions, return_inverse=True)
        breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
        run_starts, run_ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [len(wanted)]])
        if len(run_starts) >= ANNOUNCED_RUNS:
            self._announce(wanted[run_starts], run_ends - run_starts)
        unique_vectors = np.empty((len(wanted), self.d), dtype=np.float32)
        for run_start, run_end in zip(run_starts.tolist(), run_ends.tolist()):
            unique_vectors[run_start:run_end] = self._read_run(int(wanted[run_start]), run_end - run_start)
        out[:] = unique_vectors[where.reshape(-1)]
        return out

    def _announce(self, starts: np.ndarray, counts: np.ndarray) -> None:
        """Ask the kernel to start reading these runs of vectors now; it returns without waiting for them."""
        offsets = (self._offset + starts * self._row_bytes).tolist()
        for offset, length in zip(offsets, (counts * self._row_bytes).tolist()):
            os.posix_fadvise(self._fd, offset, length, os.POSIX_FADV_WILLNEED)

    def _read_run(self, start: int, count: int) -> np.ndarray:
        """Consecutive vectors, read until complete (Linux returns at most 2 GiB per read)."""
        out = np.empty((count, self.d), dtype=DTYPE)
        buffer, offset, done = memoryview(out).cast("B"), self._offset + start * self._row_bytes, 0
        while done < len(buffer):
            raw = os.pread(self._fd, len(buffer) - done, offset + done)
            if not raw:
                raise VectorFileError(f"short read: {done} of {len(buffer)} bytes at vector {start}")
            buffer[done : done + len(raw)] = raw
            done += len(raw)
        return out

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()
