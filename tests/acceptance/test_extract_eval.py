"""`service extract` and `service eval` as a user runs them: files in, JSON lines and scores out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "corpus" / "seeds" / "MANIFEST.json"
DEVSET = ROOT / "tests" / "data" / "devset"
SEED_GOLD = ROOT / "tests" / "data" / "seed_events.jsonl"  # the team's hand-made gold for the seeds
CONTRACT = {
    "file",
    "type",
    "movement",
    "actor",
    "location",
    "origin",
    "date",
    "date_precision",
    "quantities",
    "equipment",
    "hedged",
    "source",
    "in_region",
    "evidence",
}
SUMMARY = re.compile(
    r"^P=(?P<p>[\d.]+) R=(?P<r>[\d.]+) F1=(?P<f1>[\d.]+) date_acc=(?P<d>[\d.]+) tp=\d+ fp=\d+ fn=\d+$"
)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def summary(output: str) -> dict[str, float]:
    match = SUMMARY.match(output.strip().splitlines()[-1])
    assert match, output
    return {k: float(v) for k, v in match.groupdict().items()}


def test_extract_manifest_prints_contract_lines_without_comments() -> None:
    code, out = invoke("extract", "--manifest", str(SEEDS))
    assert code == 0, out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and all(set(line) == CONTRACT for line in lines)
    texts = {
        d: (SEEDS.parent / d).read_text(encoding="utf-8") for d in {line["file"] for line in lines}
    }
    for line in lines:
        text = texts[line["file"]]
        ev = line["evidence"]
        assert text[ev["start"] : ev["end"]] == ev["text"]
        # Reader comments start at the first commenter's name; no event comes from below it.
        for marker in ("Jens Holm", "Jim Allen", "\ncomments\n"):
            if marker in text:
                assert ev["start"] < text.index(marker)


def test_extract_file_with_publication_date_and_outlet(tmp_path: Path) -> None:
    report = tmp_path / "brief.txt"
    report.write_text(
        "Iranian-backed militias sent a convoy of 12 vehicles to al-Mayadin yesterday, local sources said.",
        encoding="utf-8",
    )
    code, out = invoke(
        "extract", str(report), "--published", "2022-03-09", "--outlet", "Test Outlet"
    )
    assert code == 0, out
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert line["file"] == str(report)
    assert (line["type"], line["date"], line["quantities"]) == (
        "deployment",
        "2022-03-08",
        {"vehicles": 12},
    )
    assert line["source"]["outlet"] == "Test Outlet"


def test_extract_html_goes_through_article_extraction(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Convoy</title></head><body><nav>Home | News | Contact</nav><article>"
        "<h1>Russian convoy reaches Deir Ezzor airport</h1>"
        "<p>On Tuesday, a Russian military convoy of 15 vehicles arrived at Deir ez-Zor military airport, "
        "according to local sources who watched it pass through the city in the afternoon.</p>"
        "<p>The deployment follows weeks of tension along the Euphrates between the forces present in "
        "the area, the sources added.</p></article>"
        "<section class='comments'><p>Iran withdrew from al-Mayadin yesterday, trust me.</p></section>"
        "</body></html>",
        encoding="utf-8",
    )
    code, out = invoke("extract", str(page), "--published", "2021-05-13")
    assert code == 0, out
    lines = [json.loads(x) for x in out.splitlines()]
    assert [(x["type"], x["actor"]["affiliation"], x["date"]) for x in lines] == [
        ("deployment", "russia", "2021-05-11")
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["extract"], 2, "give report FILES or --manifest"),
        (["extract", "missing.txt"], 1, "missing.txt"),
        (["extract", "--manifest", "nowhere/MANIFEST.json"], 2, "nowhere/MANIFEST.json"),
    ],
    ids=["nothing-to-do", "missing-file", "missing-manifest"],
)
def test_extract_errors_name_the_culprit(args: list[str], code: int, message: str) -> None:
    exit_code, out = invoke(*args)
    assert exit_code == code
    assert message in out
    assert "Traceback" not in out


def test_extract_refuses_unknown_file_types(tmp_path: Path) -> None:
    doc = tmp_path / "report.pdf"
    doc.write_bytes(b"%PDF-1.4")
    code, out = invoke("extract", str(doc))
    assert code == 1 and "unsupported file type .pdf" in out


def test_eval_on_the_seed_corpus_meets_the_bar() -> None:
    code, out = invoke("eval", "--gold", str(SEED_GOLD), "--manifest", str(SEEDS))
    assert code == 0, out
    s = summary(out)
    assert s["p"] >= 0.95 and s["r"] >= 0.95 and s["d"] >= 0.90, out


def test_eval_on_the_dev_set_reports_misses_and_false_positives() -> None:
    code, out = invoke(
        "eval", "--gold", str(DEVSET / "gold.jsonl"), "--manifest", str(DEVSET / "MANIFEST.json")
    )
    assert code == 0, out
    s = summary(out)
    # Issue 3's bar for the team's own dev set.
    assert s["f1"] >= 0.85, out
    body = out.strip().splitlines()[:-1]
    assert all(line.startswith(("miss ", "false positive ", "wrong date ")) for line in body)


@pytest.mark.parametrize(
    ("folder", "floor"),
    # Regression floors a little under the figures measured (held-out 0.83, devset3
    # 0.72, test 0.60), not targets; the test set is never tuned against.
    [("heldout", 0.79), ("devset3", 0.65), ("testset", 0.53)],
)
def test_eval_on_the_blind_sets_does_not_regress(folder: str, floor: float) -> None:
    blind = DEVSET.parent / folder
    code, out = invoke(
        "eval", "--gold", str(blind / "gold.jsonl"), "--manifest", str(blind / "MANIFEST.json")
    )
    assert code == 0, out
    assert summary(out)["f1"] >= floor, out


def test_manifest_with_a_month_a_null_date_and_urls(tmp_path: Path) -> None:
    """A manifest as a search index gives them: a month or no publication date, no title,
    the article's address; relative words resolve no finer than what is known."""
    sentence = "Iranian-backed militias sent a convoy of 12 vehicles to al-Mayadin yesterday."
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(sentence, encoding="utf-8")
    manifest = tmp_path / "MANIFEST.json"
    manifest.write_text(
        json.dumps(
            {
                "documents": [
                    {
                        "file": "a.txt",
                        "outlet": "Test Outlet",
                        "published": "2022-03",
                        "url": "https://example.org/a",
                    },
                    {"file": "b.txt", "outlet": "Test Outlet", "title": None, "published": None},
                ]
            }
        ),
        encoding="utf-8",
    )
    code, out = invoke("extract", "--manifest", str(manifest))
    assert code == 0, out
    lines = {line["file"]: line for line in map(json.loads, out.splitlines())}
    assert (lines["a.txt"]["date"], lines["a.txt"]["date_precision"]) == ("2022-03", "month")
    assert lines["a.txt"]["source"]["url"] == "https://example.org/a"
    assert (lines["b.txt"]["date"], lines["b.txt"]["date_precision"]) == (None, "unknown")


def test_extract_warns_about_a_report_not_in_english(tmp_path: Path) -> None:
    report = tmp_path / "rapport.txt"
    report.write_text(
        "Des milices soutenues par l'Iran ont envoyé lundi un convoi de camions vers la ville "
        "de Mayadine, selon des sources locales, après que le régime a retiré certaines de ses "
        "unités de la zone proche du fleuve et remis leurs positions aux forces locales.",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["extract", str(report), "--published", "2022-03-09"])
    assert result.exit_code == 0, result.output
    assert f"Warning: {report}: the text does not look like English" in result.stderr
