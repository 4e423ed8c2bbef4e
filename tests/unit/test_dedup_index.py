"""The compact dedup index: same candidates as datasketch's MinHashLSH, buffer and merges."""

from __future__ import annotations

import random
import threading
from dataclasses import replace

import numpy as np
import pytest
from datasketch import MinHashLSH

from service import dedup, lsh
from service.config import DedupSettings

SETTINGS = DedupSettings()


def _corpus(n: int, seed: int) -> list[dedup.Signature]:
    """Signatures of ``n`` texts drawn from a few originals with varying edits.

    Edits range from none to most of the words, so queries find from zero to dozens
    of candidates, at every estimated similarity.
    """
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(2000)]
    originals = [" ".join(rng.choices(vocab, k=rng.randint(20, 320))) for _ in range(n // 10)]
    texts = []
    for _ in range(n):
        tokens = rng.choice(originals).split()
        for _ in range(rng.randint(0, len(tokens) // 8)):
            tokens[rng.randrange(len(tokens))] = rng.choice(vocab)
        texts.append(" ".join(tokens))
    return [dedup.signature(text, SETTINGS) for text in texts]


CORPUS = _corpus(1200, seed=11)
QUERIES = _corpus(150, seed=12)


def _datasketch(ids: list[int], sigs: list[dedup.Signature]) -> MinHashLSH:
    index = MinHashLSH(threshold=SETTINGS.lsh_threshold, num_perm=SETTINGS.num_perm)
    for article_id, sig in zip(ids, sigs, strict=True):
        index.insert(article_id, sig.lead_minhash())
    return index


def _expected(
    reference: MinHashLSH, stored: dict[int, dedup.Signature], sig: dedup.Signature
) -> list[int]:
    """The previous DedupIndex's answer: datasketch's keys, ranked as it ranked them."""
    scored = [
        (
            max(
                dedup.estimated_jaccard(sig.lead, stored[key].lead),
                dedup.estimated_jaccard(sig.whole, stored[key].whole),
            ),
            key,
        )
        for key in reference.query(sig.lead_minhash())
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [key for _, key in scored]


def test_bands_and_rows_are_datasketchs() -> None:
    for threshold, num_perm in [(0.5, 64), (0.3, 128), (0.8, 32)]:
        reference = MinHashLSH(threshold=threshold, num_perm=num_perm)
        assert lsh.lsh_params(threshold, num_perm) == (reference.b, reference.r)


@pytest.mark.parametrize(
    "load",
    ["one by one", "add_many", "add_many in small batches"],
)
def test_candidates_equal_datasketchs_on_a_random_corpus(load: str) -> None:
    ids = random.Random(4).sample(range(1, 10**9), len(CORPUS))  # any order
    stored = dict(zip(ids, CORPUS, strict=True))
    reference = _datasketch(ids, CORPUS)
    index = dedup.DedupIndex(SETTINGS, buffer_rows=100)
    if load == "one by one":
        assert all(index.add(i, sig) for i, sig in stored.items())
    elif load == "add_many":
        assert index.add_many(stored.items()) == len(CORPUS)
    else:
        index.BATCH = 37  # type: ignore[misc]
        assert index.add_many(stored.items()) == len(CORPUS)
    assert len(index) == len(CORPUS) and index.last_id == max(ids)

    found = 0
    for sig in QUERIES + CORPUS[:150]:
        expected = _expected(reference, stored, sig)
        assert index.candidates(sig, limit=10**6) == expected
        assert index.candidates(sig) == expected[: SETTINGS.max_candidates]
        found += len(expected)
    assert found > 500  # the corpus does produce candidates to compare


def test_buffered_rows_are_found_before_and_after_the_merge() -> None:
    index = dedup.DedupIndex(SETTINGS, buffer_rows=50)
    ids = list(range(1, 121))
    reference = _datasketch(ids, CORPUS[:120])
    stored = dict(zip(ids, CORPUS[:120], strict=True))
    seen_buffered = seen_merged = False
    for article_id, sig in stored.items():
        index.add(article_id, sig)
        buffered = index._index.buffered
        seen_buffered |= buffered > 0
        seen_merged |= buffered == 0
        # the article just added is found whether it sits in the buffer or not
        assert article_id in index
        assert article_id in index.candidates(sig, limit=10**6)
    assert seen_buffered and seen_merged
    assert index._index.buffered == 120 - 100  # two merges of 50, 20 rows buffered
    for sig in QUERIES[:60]:
        assert index.candidates(sig, limit=10**6) == _expected(reference, stored, sig)


def test_hash_collisions_never_make_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Band keys only narrow the search: with every key equal, the values decide."""

    def same_key(lead: lsh.U32, bands: int, rows: int) -> lsh.U32:
        return np.zeros((len(lead), bands), dtype=np.uint32)

    monkeypatch.setattr(lsh, "band_keys", same_key)
    ids = list(range(1, 301))
    stored = dict(zip(ids, CORPUS[:300], strict=True))
    reference = _datasketch(ids, CORPUS[:300])
    index = dedup.DedupIndex(SETTINGS, buffer_rows=64)
    index.add_many(list(stored.items())[:200])
    for article_id, sig in list(stored.items())[200:]:
        index.add(article_id, sig)
    for sig in QUERIES[:40]:
        assert index.candidates(sig, limit=10**6) == _expected(reference, stored, sig)


def test_repeated_ids_are_indexed_once() -> None:
    index = dedup.DedupIndex(SETTINGS, buffer_rows=4)
    a, b, c = CORPUS[:3]
    assert index.add_many([(5, a), (3, b), (5, c)]) == 2  # the first 5 counts
    assert index.add(5, c) is False and index.add(9, c) is True
    assert index.add_many([(3, b), (9, c), (7, c)]) == 1
    assert len(index) == 4 and index.last_id == 9
    assert [i for i in (3, 5, 7, 9, 4) if i in index] == [3, 5, 7, 9]
    assert 5 in index.candidates(a)


def test_count_above_counts_merged_buffered_and_bulk_rows() -> None:
    rng = random.Random(7)
    ids = rng.sample(range(1, 10_000), 300)
    index = dedup.DedupIndex(SETTINGS, buffer_rows=16)
    index.add_many([(i, CORPUS[n % len(CORPUS)]) for n, i in enumerate(ids[:200])])
    for n, i in enumerate(ids[200:]):  # merged every 16, the last few left in the buffer
        index.add(i, CORPUS[n % len(CORPUS)])
    for low in [0, *rng.sample(range(10_000), 50), 10_000]:
        assert index.count_above(low) == sum(i > low for i in ids)


def test_ties_rank_by_id_and_limit_cuts() -> None:
    index = dedup.DedupIndex(SETTINGS)
    sig = CORPUS[0]
    index.add_many([(8, sig), (2, sig), (5, sig)])
    assert index.candidates(sig) == [2, 5, 8]
    assert index.candidates(sig, limit=2) == [2, 5]
    assert index.candidates(sig, limit=0) == []
    assert dedup.DedupIndex(SETTINGS).candidates(sig) == []


def test_a_signature_of_the_wrong_size_is_named_and_the_ones_before_kept() -> None:
    index = dedup.DedupIndex(SETTINGS)
    short = dedup.signature("some text " * 40, replace(SETTINGS, num_perm=32))
    with pytest.raises(ValueError, match=r"article 3: .*num_perm changed"):
        index.add_many([(1, CORPUS[0]), (2, CORPUS[1]), (3, short), (4, CORPUS[2])])
    assert len(index) == 2 and 2 in index and 4 not in index
    with pytest.raises(ValueError, match="num_perm changed"):
        index.candidates(short)


def test_concurrent_adds_and_queries() -> None:
    index = dedup.DedupIndex(SETTINGS, buffer_rows=32)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for i in range(offset, len(CORPUS), 3):
                index.add(i + 1, CORPUS[i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for sig in QUERIES * 2:
                index.candidates(sig)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(index) == len(CORPUS) and index.last_id == len(CORPUS)
    stored = {i + 1: sig for i, sig in enumerate(CORPUS)}
    reference = _datasketch(list(stored), CORPUS)
    for sig in QUERIES[:50]:
        assert index.candidates(sig, limit=10**6) == _expected(reference, stored, sig)


def test_a_bulk_load_in_batches_is_merged_when_add_many_returns() -> None:
    """Batches too big for the buffer are kept aside, then merged at the end of the call."""
    ids = list(range(1, 241))
    stored = dict(zip(ids, CORPUS[:240], strict=True))
    reference = _datasketch(ids, CORPUS[:240])
    index = dedup.DedupIndex(SETTINGS, buffer_rows=10)
    for article_id in ids[:200]:
        index.add(article_id, stored[article_id])
    index.BATCH = 12  # type: ignore[misc]
    # 40 rows in batches of 12: more than the buffer, less than a quarter of the 200
    assert index.add_many((i, stored[i]) for i in ids[200:]) == 40
    assert index._index.buffered == 0 and not index._index._bulk_keys
    assert all(i in index for i in ids) and 241 not in index
    for sig in QUERIES[:60] + CORPUS[200:240]:
        assert index.candidates(sig, limit=10**6) == _expected(reference, stored, sig)


def test_a_bulk_load_is_visible_to_other_threads_between_batches() -> None:
    """Between two batches of one ``add_many``, membership and lookups see the first."""
    index = dedup.DedupIndex(SETTINGS, buffer_rows=10)
    for i, sig in enumerate(CORPUS[100:300]):
        index.add(1000 + i, sig)
    index.BATCH = 25  # type: ignore[misc]
    seen: list[tuple[bool, bool]] = []

    def items():  # type: ignore[no-untyped-def]
        for i, sig in enumerate(CORPUS[:50]):
            if i == 30:  # the first batch of 25 is in, kept aside (less than 200 / 4)
                assert index._index._bulk_keys
                checker = threading.Thread(
                    target=lambda: seen.append((7 in index, 7 in index.candidates(CORPUS[6])))
                )
                checker.start()
                checker.join()
            yield i + 1, sig

    assert index.add_many(items()) == 50
    assert seen == [(True, True)] and 50 in index and len(index) == 250
