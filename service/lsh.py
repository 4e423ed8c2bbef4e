"""A compact MinHash LSH index in numpy arrays: the storage behind ``dedup.DedupIndex``.

datasketch's ``MinHashLSH`` keeps a Python set per bucket and a dict of keys: about
4.8 KB per document with our signatures beside it (4.6 GB at a million articles).
This index answers the same question with the same banding (``lsh_params`` asks
datasketch for its bands and rows) in about 650 bytes per document:

* signatures: one uint32 row per document, lead then whole, in blocks of
  ``BLOCK_ROWS`` rows (growing never copies what is stored, and a block's pages
  are only resident once written);
* ids: the article id of each row, plus a sorted copy for membership;
* bands: one sorted uint64 array of ``band key << 32 | row`` entries, where the
  band key is a 32-bit hash of (band number, the band's ``r`` values), and a
  directory from the entries' top bits to their position, so that a lookup reads
  a few cache lines per band.  The hash only narrows the search: every
  hit is checked against the row's stored values, so a document is a candidate
  exactly when one of its bands equals the query's, as in datasketch (whose
  bucket key is the band's bytes);
* an append buffer: rows added since the last merge, with their band keys in a
  small (bands, rows) matrix that a lookup compares in one vectorised pass.  When
  it holds ``buffer_rows`` rows, its entries are sorted and merged into the
  sorted array in place (``_Sorted``).  A bulk load (``add`` with more rows than
  the buffer holds, as at start-up) merges whenever it has added a quarter of
  what was merged before, and ``flush`` merges the rest.

Not thread-safe on its own; ``DedupIndex`` holds a lock around every call.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
from datasketch.lsh import _optimal_param  # type: ignore[import-untyped]

BLOCK_SHIFT = 16
BLOCK_ROWS = 1 << BLOCK_SHIFT
ROW_MASK = np.uint64(0xFFFFFFFF)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_GOLDEN = 0x9E3779B97F4A7C15

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@functools.lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's ``MinHashLSH`` picks for these settings.

    Same weights as ``MinHashLSH``'s default (false positives and negatives alike),
    so the index has the recall of the datasketch index it replaces.
    """
    bands, rows = _optimal_param(threshold, num_perm, 0.5, 0.5)
    if bands < 2:
        raise ValueError(
            f"LSH threshold {threshold} with {num_perm} permutations gives {bands} band(s); "
            "at least 2 are needed"
        )
    return int(bands), int(rows)


def band_keys(lead: U32, bands: int, rows: int) -> U32:
    """32-bit key of each band of each signature: (n, num_perm) -> (n, bands).

    Multiply-xor over the band's values, seeded by the band number, top 32 bits.
    """
    values = lead[:, : bands * rows].reshape(len(lead), bands, rows)
    h = values[:, :, 0].astype(np.uint64)
    h ^= _seeds(bands)
    for c in range(1, rows):
        h *= _MIX
        h ^= values[:, :, c]
    h *= _MIX
    return (h >> np.uint64(32)).astype(np.uint32)


@functools.lru_cache(maxsize=8)
def _seeds(bands: int) -> U64:
    return np.arange(1, bands + 1, dtype=np.uint64) * np.uint64(_GOLDEN)


class _Sorted:
    """A sorted array with spare room at the end, merged into in place.

    ``merge`` writes the new (sorted) values after the old ones and sorts the whole
    in place with numpy's stable sort, a timsort: it finds the two runs and merges
    them with a buffer the size of the smaller one, so a merge never holds a second
    copy of the array.  Growing goes through ``realloc`` (no copy either).  Views
    from ``view`` must not outlive the call that took them.
    """

    def __init__(self, dtype: type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]]) -> None:
        self.data: npt.NDArray[Any] = np.zeros(0, dtype=dtype)
        self.size = 0

    def view(self) -> npt.NDArray[Any]:
        return self.data[: self.size]

    def merge(self, new: npt.NDArray[Any]) -> None:
        end = self.size + len(new)
        if end > len(self.data):
            # no view of ``data`` is alive here (see the class docstring)
            self.data.resize(max(end, len(self.data) + len(self.data) // 8), refcheck=False)
        self.data[self.size : end] = new
        self.data[:end].sort(kind="stable")
        self.size = end


class BandedIndex:
    """MinHash signatures by row, with LSH bands over the lead; ids are int64."""

    def __init__(self, num_perm: int, bands: int, rows: int, *, buffer_rows: int = 8192) -> None:
        if bands * rows > num_perm:
            raise ValueError(f"{bands} bands of {rows} rows need more than {num_perm} values")
        self.num_perm, self.bands, self.rows = num_perm, bands, rows
        self.buffer_rows = max(1, buffer_rows)
        self._blocks: list[U32] = []
        self._ids: I64 = np.zeros(1024, dtype=np.int64)
        self._count = 0
        self._merged = 0  # rows [0, _merged) are in the sorted arrays, the rest buffered
        self._entries = _Sorted(np.uint64)
        self._directory: npt.NDArray[Any] = np.zeros(2, dtype=np.uint32)
        self._dir_bits = 0
        self._sorted_ids = _Sorted(np.int64)
        # band-major: a lookup compares one contiguous run per band
        self._buffer_keys: U32 = np.zeros((bands, self.buffer_rows), dtype=np.uint32)
        self._buffer_ids: set[int] = set()
        # rows added by a bulk ``add`` and not merged yet: their keys, not the buffer's
        self._bulk_keys: list[U32] = []

    # -- size and membership -----------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __contains__(self, article_id: object) -> bool:
        if not isinstance(article_id, int | np.integer):
            return False
        self.flush()  # another thread's bulk load may have rows aside
        if int(article_id) in self._buffer_ids:
            return True
        ids = self._sorted_ids.view()
        at = int(np.searchsorted(ids, article_id))
        return at < len(ids) and int(ids[at]) == article_id

    def count_above(self, article_id: int) -> int:
        """How many stored ids are above ``article_id``."""
        self.flush()
        ids = self._sorted_ids.view()
        merged = len(ids) - int(np.searchsorted(ids, article_id, side="right"))
        return merged + int(np.count_nonzero(self._ids[self._merged : self._count] > article_id))

    @property
    def buffered(self) -> int:
        """Rows added since the last merge into the sorted arrays."""
        return self._count - self._merged

    def nbytes(self) -> int:
        """Bytes of what is stored: rows written, ids, band entries and the buffer."""
        parts: list[Any] = [
            self._ids,
            self._entries.data,
            self._directory,
            self._sorted_ids.data,
            self._buffer_keys,
        ]
        return self._count * 2 * self.num_perm * 4 + sum(int(p.nbytes) for p in parts)

    # -- adding -------------------------------------------------------------------

    def add(self, ids: I64, signatures: U32) -> int:
        """Add rows ``signatures[i]`` (lead then whole values) under ``ids[i]``.

        Ids already present, and repeats within ``ids``, are skipped (the first one
        counts).  Returns how many rows were added.
        """
        if signatures.shape != (len(ids), 2 * self.num_perm):
            raise ValueError(
                f"signatures of shape {signatures.shape}, expected ({len(ids)}, "
                f"{2 * self.num_perm})"
            )
        keep = self._new(ids)
        if not keep.all():
            ids, signatures = ids[keep], signatures[keep]
        n = len(ids)
        if not n:
            return 0
        pending = self.buffered
        self._store(ids, signatures)
        keys = band_keys(signatures[:, : self.num_perm], self.bands, self.rows)
        if not self._bulk_keys and pending + n <= self.buffer_rows:
            self._buffer_keys[:, pending : pending + n] = keys.T
            self._buffer_ids.update(ids.tolist())
            if self.buffered == self.buffer_rows:
                self._merge()
            return n
        # More than the buffer holds: a bulk load.  Keep the keys aside and merge
        # when they are as many as the rows merged already, so that each row is
        # copied by O(log n) merges; ``flush`` merges the rest.
        if not self._bulk_keys:
            self._bulk_keys.append(self._buffer_keys[:, :pending].T.copy())
        self._bulk_keys.append(keys)
        if self.buffered >= max(self.buffer_rows, self._merged // 4):
            self._merge()
        return n

    def add_one(self, article_id: int, signature: U32) -> bool:
        """``add`` for one row, with less overhead; False when the id is there already."""
        self.flush()
        if article_id in self:
            return False
        pending = self.buffered
        self._store(np.array([article_id], dtype=np.int64), signature[None, :])
        lead = signature[None, : self.num_perm]
        self._buffer_keys[:, pending] = band_keys(lead, self.bands, self.rows)[0]
        self._buffer_ids.add(article_id)
        if self.buffered == self.buffer_rows:
            self._merge()
        return True

    def flush(self) -> None:
        """Merge what a bulk load left aside; call it after the last ``add`` of a batch."""
        if self._bulk_keys:
            self._merge()

    def _new(self, ids: I64) -> npt.NDArray[np.bool_]:
        """Mask of the ids to add: not stored yet, first of their repeats."""
        keep = np.ones(len(ids), dtype=bool)
        stored = self._sorted_ids.view()
        if len(stored):
            keep &= stored[np.searchsorted(stored, ids).clip(max=len(stored) - 1)] != ids
        if self.buffered:
            keep &= ~np.isin(ids, self._ids[self._merged : self._count])
        if len(ids) > 1:
            _, first = np.unique(ids, return_index=True)
            unique = np.zeros(len(ids), dtype=bool)
            unique[first] = True
            keep &= unique
        return keep

    def _store(self, ids: I64, signatures: U32) -> None:
        n, start = len(ids), self._count
        if start + n >= int(ROW_MASK):  # rows are stored as 32 bits in the band entries
            raise ValueError(f"the index holds at most {int(ROW_MASK) - 1} signatures")
        if start + n > len(self._ids):
            grown = np.zeros(max(2 * len(self._ids), start + n), dtype=np.int64)
            grown[:start] = self._ids[:start]
            self._ids = grown
        self._ids[start : start + n] = ids
        done = 0
        while done < n:
            row = start + done
            block, offset = row >> BLOCK_SHIFT, row & (BLOCK_ROWS - 1)
            if block == len(self._blocks):
                # zero-filled: pages become resident only when rows are written
                self._blocks.append(np.zeros((BLOCK_ROWS, 2 * self.num_perm), dtype=np.uint32))
            take = min(n - done, BLOCK_ROWS - offset)
            self._blocks[block][offset : offset + take] = signatures[done : done + take]
            done += take
        self._count += n

    def _merge(self) -> None:
        """Fold buffered (or bulk-loaded) rows into the sorted arrays."""
        pending = self.buffered
        if not pending:
            return
        if self._bulk_keys:
            keys = np.concatenate(self._bulk_keys)
            self._bulk_keys = []
        else:
            keys = self._buffer_keys[:, :pending].T
        rows = np.arange(self._merged, self._count, dtype=np.uint64)
        new = ((keys.astype(np.uint64) << np.uint64(32)) | rows[:, None]).ravel()
        new.sort()
        self._entries.merge(new)
        self._update_directory(new)
        self._sorted_ids.merge(np.sort(self._ids[self._merged : self._count]))
        self._merged = self._count
        self._buffer_ids.clear()

    def _update_directory(self, new: U64) -> None:
        """Count ``new`` entries into the directory, or rebuild it one bit wider.

        The directory maps the top ``_dir_bits`` bits of an entry to where its run
        starts, about eight entries per slot: a lookup reads two slots and a cache
        line or two of entries, where a binary search over 100 MB of entries would
        miss the cache some twenty times per band.
        """
        total = self._entries.size
        bits = min(32, max(4, (total // 8).bit_length()))  # keys are 32 bits: all of a key's
        shift = np.uint64(64 - bits)  # entries share its top ``bits`` bits
        kind = np.uint32 if total < 2**32 else np.int64
        if bits != self._dir_bits:
            starts = np.arange(1 << bits, dtype=np.uint64) << shift
            directory = np.empty((1 << bits) + 1, dtype=kind)
            directory[:-1] = np.searchsorted(self._entries.view(), starts)
            directory[-1] = total
            self._directory, self._dir_bits = directory, bits
            return
        counts = np.bincount((new >> shift).astype(np.intp), minlength=1 << bits)
        if self._directory.dtype != kind:
            self._directory = self._directory.astype(kind)
        self._directory[1:] += np.cumsum(counts).astype(kind)

    # -- lookups ------------------------------------------------------------------

    def rows_of(self, rows: I64) -> U32:
        """Stored signatures of ``rows``: (len(rows), 2 * num_perm)."""
        if len(rows) <= 32:  # the usual case: cheaper than grouping by block
            return np.array(
                [self._blocks[r >> BLOCK_SHIFT][r & (BLOCK_ROWS - 1)] for r in rows.tolist()],
                dtype=np.uint32,
            ).reshape(len(rows), 2 * self.num_perm)
        out = np.empty((len(rows), 2 * self.num_perm), dtype=np.uint32)
        blocks = rows >> BLOCK_SHIFT
        for block in np.unique(blocks).tolist():
            where = blocks == block
            out[where] = self._blocks[block][rows[where] & (BLOCK_ROWS - 1)]
        return out

    def ids_of(self, rows: I64) -> I64:
        return self._ids[rows]

    def query(self, lead: U32) -> tuple[I64, U32]:
        """Rows sharing at least one band with ``lead`` (ascending, each once), and their values."""
        self.flush()
        keys = band_keys(lead[None, :], self.bands, self.rows)[0]
        found: list[I64] = []
        bands: list[I64] = []
        entries = self._entries.view()
        if len(entries):
            wide = keys.astype(np.uint64)
            slot = (wide >> np.uint64(32 - self._dir_bits)).astype(np.intp)
            lo = self._directory[slot].astype(np.intp)
            counts = self._directory[slot + 1].astype(np.intp) - lo
            total = int(counts.sum())
            if total:
                # every entry of the bands' slots, then those of the bands' keys
                at = np.arange(total) + np.repeat(lo - (np.cumsum(counts) - counts), counts)
                near = entries[at]
                match = (near >> np.uint64(32)) == np.repeat(wide, counts)
                found.append((near[match] & ROW_MASK).astype(np.int64))
                bands.append(np.repeat(np.arange(self.bands), counts)[match])
        pending = self.buffered
        if pending:
            flat = np.flatnonzero(self._buffer_keys[:, :pending] == keys[:, None])
            if len(flat):
                band_of, at = np.divmod(flat, pending)
                found.append(at + self._merged)
                bands.append(band_of)
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 2 * self.num_perm), dtype=np.uint32)
        rows = np.concatenate(found) if len(found) > 1 else found[0]
        band_of = np.concatenate(bands) if len(bands) > 1 else bands[0]
        values = self.rows_of(rows)
        # The keys are hashes: a row is a candidate only where a band's values are equal.
        width = self.bands * self.rows
        theirs = values[:, :width].reshape(len(rows), self.bands, self.rows)
        mine = lead[:width].reshape(self.bands, self.rows)
        equal = (theirs[np.arange(len(rows)), band_of] == mine[band_of]).all(axis=1)
        rows, first = np.unique(rows[equal], return_index=True)
        return rows, values[equal][first]
