"""The content hash ignores spacing and Unicode presentation forms, nothing else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.hashing import content_hash, normalise


def test_normalise() -> None:
    assert normalise("  Deir\u00a0Ezzor\r\n\tcity  ") == "Deir Ezzor city"
    assert normalise("\ufb01ghters") == "fighters"  # NFKC folds the ligature


def test_hash_is_sha256_hex() -> None:
    digest = content_hash("text")
    assert len(digest) == 64 and int(digest, 16) >= 0


words = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1))
spaces = st.text(alphabet=" \t\n\r\u00a0\u2009", min_size=1, max_size=4)


@given(words, spaces, spaces)
def test_spacing_does_not_change_the_hash(tokens: list[str], sep: str, edge: str) -> None:
    assert content_hash(edge + sep.join(tokens) + edge) == content_hash(" ".join(tokens))


@given(st.text(min_size=1), st.text(min_size=1))
def test_different_words_differ(a: str, b: str) -> None:
    if normalise(a) != normalise(b):
        assert content_hash(a) != content_hash(b)


@given(st.text())
def test_hashes_stored_before_stay_valid(text: str) -> None:
    """The normal form is still NFKC with every run of ``\\s`` made one space, trimmed."""
    import re
    import unicodedata

    assert normalise(text) == re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()
