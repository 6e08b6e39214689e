"""The retrieval evaluation's hand-written paraphrased queries (bench/data/paraphrased_queries.json)
and their loader's checks (bench/retrieval_corpus.py): a target must be a passage of this Python's
corpus, a query may not copy three consecutive words of a passage it accepts, and a passage with
the target's docstring text counts as found.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bench import retrieval_corpus as rc

TOY = [
    "ntpath.basename(p): Returns the final component of a pathname",
    "posixpath.basename(p): Returns the final component of a pathname",
    "shutil.rmtree(path): Recursively delete a directory tree.",
]


def write(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "queries.json"
    path.write_text(json.dumps({"about": "test", "queries": rows}), encoding="utf-8")
    return path


def test_a_passage_with_the_same_docstring_counts_as_found(tmp_path: Path) -> None:
    path = write(tmp_path, [{"query": "file name part of a path", "target": "posixpath.basename"}])
    (query,) = rc.paraphrased_queries(TOY, path)
    assert TOY[query.target].startswith("posixpath.basename")
    assert query.found_by(0) and query.found_by(1) and not query.found_by(2)


def test_a_query_copying_three_words_of_its_target_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, [{"query": "delete a directory tree now", "target": "shutil.rmtree"}])
    copied = re.escape("copies ['a directory tree', 'delete a directory']")
    with pytest.raises(ValueError, match=copied):
        rc.paraphrased_queries(TOY, path)


def test_a_target_missing_from_the_corpus_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, [{"query": "wipe a folder", "target": "shutil.rmtre"}])
    with pytest.raises(ValueError, match=r"shutil\.rmtre: no such passage on this Python"):
        rc.paraphrased_queries(TOY, path)


def test_a_query_outside_its_python_range_is_left_out(tmp_path: Path) -> None:
    row = {"query": "wipe a folder", "target": "shutil.rmtre", "until": "3.0"}
    assert rc.paraphrased_queries(TOY, write(tmp_path, [row])) == []


@pytest.mark.slow
def test_the_checked_in_set_loads_on_this_python() -> None:
    texts = rc.passages()
    queries = rc.paraphrased_queries(texts)
    modules = {rc.passage_name(texts[q.target]).split(".")[0] for q in queries}
    assert len(queries) >= 150 and len(modules) >= 40
    assert rc.word_overlap(queries, texts) < 0.5
