"""Byte sources a layer is read from, and the hashing that verifies it.

Two shapes, chosen for speed (see ../shared/PERFORMANCE.md):
- A seekable region of a file (an uncompressed layer inside a tar, or a blob file): the tar
  walk seeks over content, while another thread hashes the region with large preads
  (hashlib and os.pread release the GIL, so this uses the second core).
- A forward-only stream: a compressed layer in a file is inflated and hashed by a child
  process, which hands the plain bytes over through a ring of shared memory (InflateProcess);
  anything read from standard input, by a producer thread through a bounded queue. The tar
  walk discards what it skips. Memory is bounded by the ring or the queue, never by the layer.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import mmap
import os
import queue
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from imgscope.errors import CorruptInput, ImgscopeError, LimitExceeded

# concurrent.futures (with logging) and zstandard are imported where first needed (hash_pool,
# sniff_compression, _inflate_zstd): the ~6 ms they cost at start-up came before the hashing
# children fork, with one core idle.
if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

try:  # python-isal inflates ~1.6x faster than zlib; fall back to zlib where it is absent
    from isal import isal_zlib as _inflate_lib
except ImportError:  # pragma: no cover - exercised only without isal
    _inflate_lib = zlib  # type: ignore[assignment]

CHUNK = 1 << 20
HASH_BUFFER = 256 << 10  # stays in L2 cache between the read and the hash
# Mapped at a time, and filled in one call (MAP_POPULATE, Linux) rather than by a page fault
# every few pages as sha256 walks it: the CPU of hashing the 618 MB layer of buildtools ran at
# 1.33 GB/s with 4 MiB windows left to fault, 1.51 populated, 1.55 with 16 MiB populated. In
# another hour of the same machine, when sha256 from memory ran at 1.1 GB/s however the layer
# was mapped, populating cost ~3% (1.14 -> 1.10). The child's RSS stays a 16 MiB view of the
# page cache.
MAP_WINDOW = 16 << 20
MAP_FLAGS = getattr(mmap, "MAP_SHARED", 0) | getattr(mmap, "MAP_POPULATE", 0)
ROTATION_STEP = 4 << 20  # inflated bytes between two moves of a rotating child (CoreRotation)
RING_SLOT, RING_SLOTS = 2 << 20, 8  # InflateProcess's shared memory: 16 MiB
MAX_UNCOMPRESSED = 256 << 30  # a layer inflating past 256 GiB is treated as a bomb

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_hash_pool: ThreadPoolExecutor | None = None


def hash_pool() -> ThreadPoolExecutor:
    global _hash_pool
    if _hash_pool is None:
        from concurrent.futures import ThreadPoolExecutor

        # One hashing thread: the other core walks the tars; more threads only contend.
        _hash_pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1),
                                        thread_name_prefix="sha256")
    return _hash_pool


def sniff_compression(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        import zstandard  # noqa: F401 - now, so that every child forked to inflate has it
        return "zstd"
    return "none"


def hash_region(fd: int, offset: int, size: int) -> tuple[str, int]:
    """sha256 of a file region; returns (digest, bytes actually read).

    Read into one reused buffer, not a new bytes object per read: with a fresh 4 MiB object
    per read (memory malloc maps and unmaps each time), the tar walk running on the other
    core took 440 ms instead of 250 (measured here); beside this loop it takes 250."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(HASH_BUFFER))
    done = 0
    while done < size:
        want = min(HASH_BUFFER, size - done)
        got = os.preadv(fd, [buffer[:want]], offset + done)
        if not got:
            break
        digest.update(buffer[:got])
        done += got
    return "sha256:" + digest.hexdigest(), done


def hash_mapped_region(fd: int, offset: int, size: int,
                       rotation: CoreRotation | None = None) -> tuple[str, int]:
    """hash_region through mmap windows: sha256 reads the page cache in place, without the
    copy a read makes (10-14% less CPU for 799 MB here: 0.69 s against 0.80 best of 6, means
    0.76 against 0.84). With `rotation`, the process moves to the next core at every window.

    Only in a forked child (ForkedJobs): a file truncated under a mapping raises SIGBUS,
    which ends the process; the parent then sees a child that stopped and says so."""
    end = min(offset + size, os.fstat(fd).st_size)
    if not hasattr(mmap, "MAP_SHARED") or end <= offset:
        return hash_region(fd, offset, size)
    digest = hashlib.sha256()
    at = offset
    while at < end:
        if rotation is not None:
            rotation.step()
        base = at - at % mmap.ALLOCATIONGRANULARITY
        length = min(MAP_WINDOW, end - base)
        try:
            window = mmap.mmap(fd, length, flags=MAP_FLAGS, prot=mmap.PROT_READ, offset=base)
        except OSError:  # a file system that cannot map files: read it instead
            return hash_region(fd, offset, size)
        with window, memoryview(window) as view:
            digest.update(view[at - base:])
        at = base + length
    return "sha256:" + digest.hexdigest(), end - offset


class CoreRotation:
    """Moves this process to the next of `cores` at each step(), round robin, so that its
    work is split evenly between them (see api.start_hashing: a hashing child lighter than
    the longest chain of work, on a machine with fewer cores than busy processes).

    Why: with three CPU-bound processes on two cores, Linux keeps the pairing it started
    with (30-80 time slices per process over a whole inspect, measured in
    /proc/PID/schedstat), and which two share a core decides the wall time: the same inspect
    took 0.49 to 0.63 s here. Moving between the cores every few MiB gives each of them half
    of this process's work, whatever the kernel paired. A core that refuses (a cpuset
    narrowed under us) ends the rotation: the process is left where the kernel puts it."""

    def __init__(self, cores: Sequence[int]) -> None:
        self.cores = list(cores)
        self.turn = 0

    def step(self) -> None:
        if not self.cores:
            return
        core = self.cores[self.turn % len(self.cores)]
        self.turn += 1
        try:
            os.sched_setaffinity(0, {core})
        except OSError:
            self.release()

    def release(self) -> None:
        """Back on every core it started with."""
        cores, self.cores = self.cores, []
        with contextlib.suppress(OSError):
            if cores:
                os.sched_setaffinity(0, set(cores))


def rotation_cores(busy: int) -> list[int]:
    """The cores a light hashing child rotates over (CoreRotation) when `busy` CPU-bound
    processes share this process's cores: none when each has a core of its own, or where
    affinity cannot be set."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "fork"):
        return []
    cores = sorted(os.sched_getaffinity(0))
    return cores if 1 < len(cores) < busy else []


def hash_region_async(fd: int, offset: int, size: int) -> Future[tuple[str, int]]:
    return hash_pool().submit(hash_region, fd, offset, size)


def hash_compressed_region(fd: int, offset: int, size: int, compression: str,
                           copy_fd: int = -1, copy_limit: int = 0,
                           rotation: CoreRotation | None = None) -> tuple[str, str, int, int]:
    """(blob digest, digest of the inflated stream, inflated size, bytes copied) of a
    compressed region. With `copy_fd`, the inflated stream is also written there from offset
    0, up to `copy_limit` bytes: a copy of more is given up (bytes copied 0). With
    `rotation`, the process moves to the next core every ROTATION_STEP bytes inflated."""
    decoder = HashingDecoder(file_chunks(fd, offset, size), compression, hash_raw=True,
                             threaded=False)
    copied = 0
    turn_at = 0
    for chunk in decoder.chunks():
        if rotation is not None and decoder.decoded_size >= turn_at:
            rotation.step()
            turn_at = decoder.decoded_size + ROTATION_STEP
        if copy_fd >= 0:
            if copied + len(chunk) > copy_limit:
                copy_fd, copied = -1, 0
            else:
                os.pwrite(copy_fd, chunk, copied)
                copied += len(chunk)
    return ("sha256:" + decoder.raw_digest.hexdigest(),  # type: ignore[union-attr]
            "sha256:" + decoder.decoded_digest.hexdigest(), decoder.decoded_size, copied)


def _hash_any(fd: int, offset: int, size: int, compression: str, copy_fd: int = -1,
              copy_limit: int = 0, *, rotation: CoreRotation | None = None
              ) -> tuple[str, str, int, int]:
    if compression == "none":
        digest, done = hash_mapped_region(fd, offset, size, rotation)
        return digest, digest, done, 0
    return hash_compressed_region(fd, offset, size, compression, copy_fd, copy_limit, rotation)


def stop_child(pid: int, *fds: int) -> None:
    """End a forked helper (done or not) and reap it, then close our ends of its pipes."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    for fd in fds:
        os.close(fd)


class InflateProcess:
    """Inflate (and hash) a compressed file region in a child process, which hands the plain
    tar back through a ring of shared memory: one inflate, on the second core, and no thread
    in this process (a thread would fight the tar walk for the GIL). Errors come back as one
    line.

    Why a ring, not a pipe: the inspect of buildtools-v2 (a 618 MB layer) took 2.88 s with
    a pipe and 2.51 s with the ring as OCI zstd, 3.10 and 2.84 s as OCI gzip (6 interleaved
    rounds), and the walking side spent 0.26 s of CPU on the pipe for that layer against
    0.06 s. The inflate and both sha256 of that layer take 1.46 s in one process; through
    the pipe it came in 1.66-1.95 s, through the ring in 1.43-1.55. Slots of 2 MiB: with
    256 KiB ones (more handovers) the gzip inspect took 3.24 s, with 4 slots of 2 MiB
    (less slack for the walk's bursts) the zstd one 2.61 s. The child fills the slots in
    turn and says how full each one is (a 4-byte length on a pipe; 0: the end); this
    process copies a slot out and hands it back (a byte on another pipe), so the child
    never writes over what was not read."""

    def __init__(self, fd: int, offset: int, size: int, compression: str, verify: bool,
                 limit: int = MAX_UNCOMPRESSED) -> None:
        ring = mmap.mmap(-1, RING_SLOTS * RING_SLOT)  # anonymous and shared with the child
        filled_read, filled_write = os.pipe()
        free_read, free_write = os.pipe()
        result_read, result_write = os.pipe()
        os.write(free_write, bytes(RING_SLOTS))
        pid = os.fork()
        if pid == 0:
            os.close(filled_read)
            os.close(free_write)
            os.close(result_read)
            message = "stopped"
            try:
                decoder = HashingDecoder(file_chunks(fd, offset, size), compression,
                                         hash_raw=verify, threaded=False, limit=limit,
                                         hash_decoded=verify)
                _fill_ring(ring, decoder.chunks(), free_read, filled_write)
                raw = "sha256:" + decoder.raw_digest.hexdigest() if verify else "-"
                plain = "sha256:" + decoder.decoded_digest.hexdigest() if verify else "-"
                message = f"ok {raw} {plain} {decoder.raw_size} {decoder.decoded_size}"
            except BrokenPipeError:
                pass  # the walk stopped early; nothing to report
            except LimitExceeded as exc:
                message = f"limit {exc}"
            except BaseException as exc:
                message = f"corrupt {exc}"
            finally:
                with contextlib.suppress(OSError):
                    os.close(filled_write)
                    os.write(result_write, message.encode("utf-8", "replace"))
                os._exit(0)
        os.close(filled_write)
        os.close(free_read)
        os.close(result_write)
        self._pid = pid
        self._ring = ring
        self._filled = filled_read
        self._free = free_write
        self._result = result_read
        self.raw_size = self.decoded_size = 0
        self.raw_digest = self.decoded_digest = None

    def chunks(self) -> Iterator[bytes]:
        ring, filled, free = self._ring, self._filled, self._free
        slot = 0
        while True:
            record = os.read(filled, 4)
            while 0 < len(record) < 4:  # a 4-byte write is atomic; a short read is not
                more = os.read(filled, 4 - len(record))
                if not more:
                    break
                record += more
            if len(record) < 4:
                return  # the child ended without its end mark: error() says why
            length = int.from_bytes(record, "little")
            if not length:
                return
            at = slot * RING_SLOT
            chunk = ring[at:at + length]  # a copy: the slot can go back now
            with contextlib.suppress(BrokenPipeError):  # the child has written its last
                os.write(free, b"\0")
            slot = (slot + 1) % RING_SLOTS
            yield chunk

    def error(self) -> ImgscopeError | None:
        """The child's own error, if it failed (read once the data pipe is at its end)."""
        self._read_result()
        return self._error

    def _read_result(self) -> None:
        if hasattr(self, "_error"):
            return
        parts = []
        while True:
            piece = os.read(self._result, 4096)
            if not piece:
                break
            parts.append(piece)
        text = b"".join(parts).decode("utf-8", "replace")
        kind, _, rest = text.partition(" ")
        self._error: ImgscopeError | None = None
        if kind == "ok":
            raw, plain, raw_size, plain_size = rest.split()
            self.raw_digest = None if raw == "-" else raw
            self.decoded_digest = None if plain == "-" else plain
            self.raw_size, self.decoded_size = int(raw_size), int(plain_size)
        elif kind == "limit":
            self._error = LimitExceeded(rest)
        else:
            self._error = CorruptInput(rest or "the layer could not be inflated")

    def close(self) -> None:
        if self._pid:
            stop_child(self._pid, self._filled, self._free, self._result)
            self._ring.close()
            self._pid = 0


def _fill_ring(ring: mmap.mmap, chunks: Iterator[bytes], free: int, filled: int) -> None:
    """InflateProcess's child: `chunks` into the ring's slots in turn, each slot taken once
    the reader has handed it back (a byte on `free`), its length said on `filled`."""
    slot = used = 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            if not used and not os.read(free, 1):
                raise BrokenPipeError  # the reader is gone: the walk stopped early
            at = slot * RING_SLOT + used
            piece = view[:RING_SLOT - used]
            ring[at:at + len(piece)] = piece
            used += len(piece)
            view = view[len(piece):]
            if used == RING_SLOT:
                os.write(filled, used.to_bytes(4, "little"))
                slot, used = (slot + 1) % RING_SLOTS, 0
    if used:
        os.write(filled, used.to_bytes(4, "little"))
    os.write(filled, bytes(4))


class ForkedJobs:
    """Run `func(*job)` for every job, in order, in one forked child process; each result
    comes back as one JSON line over a pipe, and `result(i)` returns it (a list, as JSON
    gives it) or raises the ImgscopeError the job raised.

    Not a thread: a thread that hashes while the main thread walks tar headers makes every
    pread of the walker wait for the GIL (the convoy effect: measured here, 7.7k header
    preads went from 0.07 s to 0.99 s). A child has its own interpreter. Falls back to a
    thread where fork is missing."""

    def __init__(self, func: Callable[..., object], jobs: Sequence[tuple]) -> None:
        self._results: dict[int, list] = {}
        self._pending = b""
        self._pid = 0
        self._futures: list[Future[object]] | None = None
        if not jobs:
            return
        if not hasattr(os, "fork"):
            self._futures = [hash_pool().submit(func, *job) for job in jobs]
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run, report, and leave without running any cleanup
            status = 0
            try:
                os.close(read_end)
                for index, job in enumerate(jobs):
                    try:
                        row = [index, "ok", func(*job)]
                    except ImgscopeError as exc:
                        row = [index, type(exc).__name__, str(exc)]
                    except Exception as exc:  # unreadable data: an error like any other
                        row = [index, "CorruptInput", str(exc)]
                    os.write(write_end, json.dumps(row).encode() + b"\n")
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        self._pid, self._read_end = pid, read_end

    def result(self, index: int) -> list:
        if self._futures is not None:
            return json.loads(json.dumps(self._futures[index].result()))
        while index not in self._results:
            chunk = os.read(self._read_end, 4096)
            if not chunk:
                raise CorruptInput("layer hashing stopped before it finished")
            self._pending += chunk
            *lines, self._pending = self._pending.split(b"\n")
            for line in lines:
                row = json.loads(line)
                self._results[row[0]] = row
        _, outcome, value = self._results[index]
        if outcome != "ok":
            from imgscope import errors

            raise getattr(errors, outcome, CorruptInput)(value)
        return value

    def close(self) -> None:
        if self._pid:
            stop_child(self._pid, self._read_end)
            self._pid = 0


class RegionHasher(ForkedJobs):
    """sha256 of many file regions (fd, offset, size, compression[, copy fd, copy limit])
    in one forked child; a compressed region with a copy fd is also inflated into it. With
    `cores`, the child rotates over them as it goes (CoreRotation)."""

    def __init__(self, regions: list[tuple], cores: Sequence[int] = ()) -> None:
        rotation = CoreRotation(cores) if cores else None
        super().__init__(functools.partial(_hash_any, rotation=rotation), regions)

    def result(self, index: int) -> tuple[str, str, int]:  # type: ignore[override]
        """(blob digest, content digest, content size) of region `index`."""
        blob, content, done, _copied = super().result(index)
        return blob, content, done

    def copied(self, index: int) -> int:
        """How many inflated bytes of region `index` its copy holds (0: no complete copy)."""
        return super().result(index)[3]


class _PendingDigest:
    """One region's result from a RegionHasher, with a Future-like result()."""

    def __init__(self, hasher: RegionHasher, index: int) -> None:
        self._hasher, self._index = hasher, index

    def result(self) -> tuple[str, str, int]:
        return self._hasher.result(self._index)

    def copied(self) -> int:
        return self._hasher.copied(self._index)


def pending_digests(hasher: RegionHasher, count: int) -> list[_PendingDigest]:
    return [_PendingDigest(hasher, i) for i in range(count)]


class FileRegion:
    """A seekable window of a file, read with a small read-ahead buffer for tar headers."""

    # Big enough to hold several small members and their headers, small enough that a miss
    # after skipping a large file does not copy much (17k misses x 64 KiB cost 0.75 s).
    BUFFER = 8 * 1024

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd = fd
        self._start = offset
        self._size = size
        self._pos = 0
        self._buf = b""
        self._buf_at = 0  # region offset of _buf[0]

    def read(self, n: int) -> bytes:
        rel = self._pos - self._buf_at
        if rel >= 0 and rel + n <= len(self._buf):  # the common case: a header in the buffer
            self._pos += n
            return self._buf[rel : rel + n]
        n = min(n, self._size - self._pos)
        if n <= 0:
            return b""
        if n >= self.BUFFER:
            data = os.pread(self._fd, n, self._start + self._pos)
        else:
            want = min(self.BUFFER, self._size - self._pos)
            self._buf = os.pread(self._fd, want, self._start + self._pos)
            self._buf_at = self._pos
            data = self._buf[:n]
        self._pos += len(data)
        return data

    def skip(self, n: int) -> int:
        n = max(0, min(n, self._size - self._pos))
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos


class ChunkSource:
    """Forward-only byte source over an iterator of chunks (the decoded layer)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        for chunk in self._chunks:
            if chunk:
                self._buf = self._buf[self._pos :] + chunk if self._pos < len(self._buf) else chunk
                self._pos = 0
                return True
        self._eof = True
        return False

    def read(self, n: int) -> bytes:
        if self._pos + n <= len(self._buf):
            data = self._buf[self._pos : self._pos + n]
            self._pos += n
            return data
        parts = [self._buf[self._pos :]]
        have = len(parts[0])
        self._buf, self._pos = b"", 0
        while have < n and self._fill():
            take = min(n - have, len(self._buf))
            parts.append(self._buf[:take])
            self._pos = take
            have += take
        return b"".join(parts)

    def skip(self, n: int) -> int:
        done = 0
        while done < n:
            avail = len(self._buf) - self._pos
            if avail <= 0:
                self._buf, self._pos = b"", 0
                if not self._fill():
                    break
                continue
            step = min(avail, n - done)
            self._pos += step
            done += step
        return done

    def drain(self) -> int:
        """Consume everything left (so the hashes cover the whole stream); returns its size."""
        left = len(self._buf) - self._pos
        self._buf, self._pos = b"", 0
        for chunk in self._chunks:
            left += len(chunk)
        self._eof = True
        return left


def _inflate_gzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate concatenated gzip members (eStargz is one member per file) chunk by chunk."""
    decomp = _inflate_lib.decompressobj(31)
    pending = b""
    started = False
    for chunk in chunks:
        data = pending + chunk if pending else chunk
        pending = b""
        while data:
            out = decomp.decompress(data, CHUNK)
            started = True
            if out:
                yield out
            # A bounded output call leaves input unconsumed: keep inflating it first.
            while decomp.unconsumed_tail:
                out = decomp.decompress(decomp.unconsumed_tail, CHUNK)
                if out:
                    yield out
            if decomp.eof:
                rest = decomp.unused_data
                decomp = _inflate_lib.decompressobj(31)
                started = False
                if rest and not rest.startswith(GZIP_MAGIC):
                    if rest.strip(b"\0"):
                        raise CorruptInput("data after the end of the gzip stream is not gzip")
                    rest = b""  # zero padding after the last member is tolerated
                data = rest
            else:
                data = b""
    if started and not decomp.eof:
        raise CorruptInput("gzip stream is truncated")
    tail = decomp.flush()
    if tail:
        yield tail


def _inflate_zstd(chunks: Iterator[bytes]) -> Iterator[bytes]:
    import zstandard  # (see the imports)

    dctx = zstandard.ZstdDecompressor()
    decomp = dctx.decompressobj()
    ended = True
    for chunk in chunks:
        data = chunk
        while data:
            try:
                out = decomp.decompress(data)
            except zstandard.ZstdError as exc:
                raise CorruptInput(f"zstd data is corrupt ({exc})") from None
            ended = False
            if out:
                yield out
            if decomp.eof:
                data = decomp.unused_data  # zstd:chunked and pzstd write several frames
                decomp = dctx.decompressobj()
                ended = True
            else:
                data = b""
    if not ended:
        raise CorruptInput("zstd stream is truncated")


def decode(chunks: Iterator[bytes], compression: str) -> Iterator[bytes]:
    if compression == "gzip":
        return _inflate_gzip(chunks)
    if compression == "zstd":
        return _inflate_zstd(chunks)
    return chunks


class HashingDecoder:
    """Producer thread: raw chunks -> (hash raw) -> inflate -> (hash decoded) -> bounded queue.

    The consumer iterates `chunks()`; errors in the producer are re-raised in the consumer.
    """

    _DONE = object()

    def __init__(
        self,
        raw_chunks: Iterator[bytes],
        compression: str,
        hash_raw: bool,
        threaded: bool = True,
        limit: int = MAX_UNCOMPRESSED,
        hash_decoded: bool = True,
    ) -> None:
        self.compression = compression
        self.raw_digest = hashlib.sha256() if hash_raw else None
        self.decoded_digest = hashlib.sha256()
        self._hash_decoded = hash_decoded
        self.raw_size = 0
        self.decoded_size = 0
        self._raw = raw_chunks
        self._limit = limit
        self._threaded = threaded
        self._queue: queue.Queue[object] = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _counted_raw(self) -> Iterator[bytes]:
        for chunk in self._raw:
            self.raw_size += len(chunk)
            if self.raw_digest is not None:
                self.raw_digest.update(chunk)
            yield chunk

    def _decoded(self) -> Iterator[bytes]:
        try:
            for out in decode(self._counted_raw(), self.compression):
                self.decoded_size += len(out)
                if self.decoded_size > self._limit:
                    raise LimitExceeded(
                        f"layer inflates past {self._limit} bytes (decompression bomb?)"
                    )
                if self._hash_decoded:
                    self.decoded_digest.update(out)
                yield out
        except (zlib.error, _inflate_lib.error) as exc:  # zstd's: _inflate_zstd
            raise CorruptInput(f"{self.compression} data is corrupt ({exc})") from None

    def _produce(self) -> None:
        try:
            for out in self._decoded():
                while not self._stop.is_set():
                    try:
                        self._queue.put(out, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._queue.put(self._DONE)
        except BaseException as exc:  # handed to the consumer thread, re-raised there
            self._queue.put(exc)

    def chunks(self) -> Iterator[bytes]:
        if not self._threaded:
            yield from self._decoded()
            return
        self._thread = threading.Thread(target=self._produce, daemon=True, name="inflate")
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # Unblock a producer waiting on a full queue, then let it exit.
            while self._thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    self._queue.get(timeout=0.05)
            self._thread = None


def file_chunks(fd: int, offset: int, size: int) -> Iterator[bytes]:
    done = 0
    while done < size:
        chunk = os.pread(fd, min(CHUNK, size - done), offset + done)
        if not chunk:
            return
        done += len(chunk)
        yield chunk


def reader_chunks(read: Callable[[int], bytes]) -> Iterator[bytes]:
    while True:
        chunk = read(CHUNK)
        if not chunk:
            return
        yield chunk
