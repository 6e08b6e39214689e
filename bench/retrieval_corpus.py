"""The retrieval evaluation's corpus and queries: CPython standard library docstrings.

Passages are what an API-docs memory would hold: ``qualified.name(signature): docstring`` for the
public modules, classes, functions and methods of this interpreter's standard library (tests,
IDLE, tkinter, lib2to3 and private names left out), cut at ``MAX_CHARS``. Everything is
deterministic for one Python version, so a cache keyed by the corpus's hash stays valid.

Two query sets, each query with one known target passage:

- **identifier-style**: a term that embeddings miss, wrapped in ordinary words ("how do I use
  raw_decode?"). Terms are a passage's own name when it is identifier-like (``raw_decode``,
  ``IPv4Interface``, ``module.CONSTANT``), or a token of its text that is an error code, file name,
  version string or dotted/underscored identifier; a term qualifies only when at most
  ``MAX_TERM_PASSAGES`` passages contain it, so its target is well defined.
- **ordinary-language**: a sentence of the target's docstring (not its first line, which often
  names the object) with code-like tokens removed, lower-cased, at least eight words, unique
  in the corpus. Both vector and text search can find these; the check is that fusing the text
  leg in does not push targets out of the top 10. Being copied from the target, they share its
  exact wording, which favours text search.
- **paraphrased**: questions written by hand, in a user's own words, checked in as
  ``bench/data/paraphrased_queries.json`` (``{"query": ..., "target": "qualified.name"}``).
  ``paraphrased_queries`` validates them at load: every target names a passage of this Python's
  corpus, and no query repeats three consecutive words of any passage it accepts.

A query's target is one passage; it also accepts (``Query.accepts``) every passage whose docstring
text is identical to the target's (``posixpath.basename`` and ``ntpath.basename`` share theirs:
nothing in the text can tell them apart), and every passage of the same qualified name (a
property's getter and setter). For the paraphrased set the target is given by qualified name, the
part of a passage before its signature and colon.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

MAX_CHARS = 1200
MAX_TERM_PASSAGES = 2
SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "tkinter",
    "lib2to3",
    "turtledemo",
    "site-packages",
    "ensurepip",
    "venv",
    "pydoc_data",
    "__pycache__",
    "distutils",
    "msilib",
    "config-3.11",
}
TEMPLATES_IDENT = [
    "how do I use {t}?",
    "what does {t} do",
    "{t} example please",
    "where is {t} documented",
    "when should I call {t} in my code",
    "explain {t} to me",
]
_IDENTLIKE = re.compile(r"^(?=.*[_.0-9]|.*[a-z][A-Z]|.*[A-Z]{2}[a-z])[A-Za-z0-9_.]+$")
_TEXT_TERMS = [
    re.compile(r"\b[A-Za-z_][\w-]*\.(?:py|pyc|cfg|ini|toml|txt|json|h|c|so|dll|exe|zip|tar|gz)\b"),
    re.compile(r"\b(?:E[A-Z]{3,}|[A-Z]+_[A-Z_]+)\b"),  # errno names, CONSTANTS_LIKE_THIS
    re.compile(r"\b[A-Za-z]*\d+\.\d+(?:\.\d+)*\b"),  # version strings
    re.compile(r"\b[a-z_][a-z0-9]*(?:_[a-z0-9]+)+\b"),  # snake_case identifiers
    re.compile(r"\b[a-z]+[A-Z][A-Za-z0-9]*\b"),  # camelCase
]
_CODEISH = re.compile(r"``[^`]*``|`[^`]*`|\S*[_.()\[\]=<>*/\\]\S*|\S*\d\S*")


PARAPHRASED_FILE = Path(__file__).resolve().parent / "data" / "paraphrased_queries.json"
# A query may share no run of this many consecutive words with a passage it accepts.
MAX_SHARED_RUN = 3
# Words left out of the overlap rate (they say nothing about copying).
_STOP_WORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be by can do does for from get how i if in into is it its my of on "
        "or out some that the their them this to up what when where which with without",
    )
)


@dataclass(frozen=True)
class Query:
    text: str
    target: int  # index of the passage
    kind: str  # "identifier", "ordinary" or "paraphrased"
    accepts: frozenset[int] = frozenset()  # passages that count as found (target included)

    def found_by(self, index: int) -> bool:
        return index == self.target or index in self.accepts


def _public(name: str) -> bool:
    return not name.startswith("_")


def _signature(node: ast.AST) -> str:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        return "(" + ", ".join(args) + ")"
    return ""


def _walk(tree: ast.Module, module: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    doc = ast.get_docstring(tree)
    if doc:
        out.append((module, doc))
    stack: list[tuple[ast.AST, str]] = [(tree, module)]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if not _public(child.name):
                    continue
                name = f"{prefix}.{child.name}"
                doc = ast.get_docstring(child)
                if doc:
                    out.append((name + _signature(child), doc))
                if isinstance(child, ast.ClassDef):
                    stack.append((child, name))
    return out


def passages() -> list[str]:
    """The corpus, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts[:-1]) or not all(
            _public(p) or p == "__init__.py" for p in rel.parts
        ):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for name, doc in _walk(tree, module):
            if len(doc) >= 20:
                found.append(f"{name}: {doc}"[:MAX_CHARS])
    return sorted(set(found))


def corpus_hash(texts: list[str]) -> str:
    return hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]


def _name_term(passage: str) -> str | None:
    head = passage.split(":", 1)[0].split("(", 1)[0]
    last = head.rsplit(".", 1)[-1]
    if _IDENTLIKE.match(last):
        return last
    return None


def identifier_queries(texts: list[str], count: int, seed: int = 1) -> list[Query]:
    """Identifier-style queries whose term occurs in at most MAX_TERM_PASSAGES passages."""
    rng = random.Random(seed)
    candidates: dict[str, int] = {}
    for i, text in enumerate(texts):
        term = _name_term(text)
        if term:
            candidates.setdefault(term, i)
        body = text.split(":", 1)[1]
        for pattern in _TEXT_TERMS:
            for m in pattern.findall(body):
                candidates.setdefault(m.strip("."), i)
    lowered = [t.lower() for t in texts]
    terms = sorted(candidates)
    rng.shuffle(terms)
    out: list[Query] = []
    for term in terms:
        if len(term) < 4:
            continue
        needle = term.lower()
        holders = 0
        for t in lowered:
            holders += needle in t
            if holders > MAX_TERM_PASSAGES:
                break
        if holders > MAX_TERM_PASSAGES:
            continue
        template = rng.choice(TEMPLATES_IDENT)
        out.append(Query(template.format(t=term), candidates[term], "identifier"))
        if len(out) == count:
            break
    return out


def ordinary_queries(texts: list[str], count: int, seed: int = 2) -> list[Query]:
    """Ordinary-language queries: a later sentence of the target's docstring, code removed."""
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    dup: set[str] = set()
    for i, text in enumerate(texts):
        body = text.split(":", 1)[1]
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(body.split()))[1:]
        for s in sentences:
            words = _CODEISH.sub(" ", s).lower().split()
            words = [w.strip(",;:!?.\"'") for w in words]
            words = [w for w in words if w.isalpha()]
            if len(words) < 8:
                continue
            q = " ".join(words[:20])
            if q in seen:
                dup.add(q)
            seen.setdefault(q, i)
    pool = sorted((q, i) for q, i in seen.items() if q not in dup)
    rng.shuffle(pool)
    taken: set[int] = set()
    out: list[Query] = []
    for q, i in pool:
        if i in taken:
            continue
        taken.add(i)
        out.append(Query(q, i, "ordinary"))
        if len(out) == count:
            break
    return out


def passage_name(passage: str) -> str:
    """A passage's qualified name: the text before its signature and colon."""
    return passage.split(":", 1)[0].split("(", 1)[0]


def passage_doc(passage: str) -> str:
    """A passage's docstring text (after ``name(signature): ``)."""
    return passage.split(": ", 1)[1] if ": " in passage else ""


def accepted(texts: list[str], target: int) -> frozenset[int]:
    """The passages a query for ``target`` accepts: those of the same qualified name, and those
    whose docstring text is identical to one of theirs."""
    name = passage_name(texts[target])
    same_name = {i for i, t in enumerate(texts) if passage_name(t) == name}
    docs = {passage_doc(texts[i]) for i in same_name}
    return frozenset(same_name | {i for i, t in enumerate(texts) if passage_doc(t) in docs})


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def shared_runs(query: str, passage: str, n: int = MAX_SHARED_RUN) -> list[str]:
    """The runs of ``n`` consecutive words that ``query`` copies from ``passage``."""
    q, p = words(query), words(passage)
    runs = {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}
    return [" ".join(q[i : i + n]) for i in range(len(q) - n + 1) if tuple(q[i : i + n]) in runs]


def word_overlap(queries: list[Query], texts: list[str]) -> float:
    """The share of the queries' words (stop words left out) that occur in an accepted passage."""
    shared = total = 0
    for q in queries:
        vocabulary = {w for i in q.accepts | {q.target} for w in words(texts[i])}
        content = [w for w in words(q.text) if w not in _STOP_WORDS]
        shared += sum(w in vocabulary for w in content)
        total += len(content)
    return shared / total if total else 0.0


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def applies_here(row: dict[str, str]) -> bool:
    """Whether a query's Python range (optional ``since`` / ``until``, minor versions, both
    included) holds this interpreter: the corpus is this Python's standard library, and modules
    come and go (``imghdr`` until 3.12) or move to private modules (``datetime``'s Python code
    is ``_pydatetime`` from 3.12, which the corpus leaves out)."""
    here = sys.version_info[:2]
    return _version(row.get("since", "3.0")) <= here <= _version(row.get("until", "99.0"))


def paraphrased_queries(texts: list[str], path: Path = PARAPHRASED_FILE) -> list[Query]:
    """The hand-written paraphrased queries that apply to this Python, validated against this
    corpus.

    Raises ValueError naming every query with fields other than query, target, since and until,
    whose target is not a passage of ``texts`` (on a Python its range includes), that is
    repeated, or that copies MAX_SHARED_RUN consecutive words of a passage it accepts.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    by_name: dict[str, int] = {}
    for i, t in enumerate(texts):
        by_name.setdefault(passage_name(t), i)
    problems: list[str] = []
    seen: set[str] = set()
    out: list[Query] = []
    for row in data["queries"]:
        text, name = row["query"], row["target"]
        unknown = set(row) - {"query", "target", "since", "until"}
        if unknown:
            problems.append(f"{name}: unknown fields {sorted(unknown)}")
        if text in seen:
            problems.append(f"repeated query {text!r}")
        seen.add(text)
        if not applies_here(row):
            continue
        if name not in by_name:
            problems.append(f"{name}: no such passage on this Python ({text!r})")
            continue
        query = Query(text, by_name[name], "paraphrased", accepted(texts, by_name[name]))
        copied = {r for i in query.accepts for r in shared_runs(text, texts[i])}
        if copied:
            problems.append(f"{name}: {text!r} copies {sorted(copied)}")
        out.append(query)
    if problems:
        raise ValueError(f"{path.name}: " + "; ".join(problems))
    return out
