"""Local training / frequency text: Python code, English and Spanish found on this machine.

No text is downloaded. The sources (all deterministic given the same system files):

* **code**: the Python standard library's ``.py`` sources (``sysconfig.get_paths()['stdlib']``,
  ``site-packages`` excluded).
* **english**: the stdlib's docstrings (via :mod:`ast`), man pages under ``/usr/share/man/man*``
  with roff markup stripped, license texts (``/usr/share/common-licenses``, ``/usr/share/doc/*/copyright``)
  and the English source strings (``msgid``) of the gettext catalogues.
* **spanish**: the Spanish translations (``msgstr``) in ``/usr/share/locale/es*/LC_MESSAGES/*.mo``
  plus Spanish man pages (``/usr/share/man/es``). This is software-interface Spanish, not
  general prose: an *approximation* of a Spanish corpus, documented as such in docs/lm_models.md.

Files are visited in sorted order, shuffled with a seeded generator, and taken until a byte cap.
"""

from __future__ import annotations

import ast
import gettext
import gzip
import hashlib
import json
import random
import re
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowprob.errors import UnavailableError

__all__ = [
    "CorpusManifest",
    "build_corpus",
    "code_texts",
    "english_texts",
    "spanish_texts",
    "strip_roff",
    "token_counts",
]

EOT = "<|endoftext|>"


def _stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files() -> list[Path]:
    root = _stdlib_dir()
    return sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts and "dist-packages" not in p.parts)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def code_texts(seed: int = 0) -> Iterator[tuple[str, str]]:
    """Yield ``(source_name, text)`` for stdlib ``.py`` files in a seeded order."""
    files = _stdlib_files()
    random.Random(seed).shuffle(files)
    for p in files:
        t = _read(p)
        if t and t.strip():
            yield f"stdlib:{p.relative_to(_stdlib_dir())}", t


def _docstrings(text: str) -> list[str]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc and len(doc) > 40:
                out.append(doc)
    return out


_ROFF_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes
    (re.compile(r"\\s[+-]?\d"), ""),
    (re.compile(r"\\\(em|\\\(en"), "-"),
    (re.compile(r"\\\((lq|rq|dq)"), '"'),
    (re.compile(r"\\\((oq|cq)"), "'"),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\[&,/|^%]"), ""),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\ "), " "),
    (re.compile(r"\\\*\(?[A-Za-z]+"), ""),
    (re.compile(r"\\"), ""),
]
_TEXT_MACROS = re.compile(r"^\.(B|I|BR|RB|IR|RI|BI|IB|SH|SS|TP|IP|SM|SB|UR|MT|Nm|Nd|Dt)\b\s*(.*)$")


def strip_roff(src: str) -> str:
    """Plain text from man-page roff: drop requests, keep macro arguments, remove escapes."""
    lines = []
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"", '.\\}')):
            continue
        if line.startswith((".", "'")):
            m = _TEXT_MACROS.match(line)
            if not m or not m.group(2):
                continue
            line = m.group(2).replace('"', "")
        for pat, rep in _ROFF_ESCAPES:
            line = pat.sub(rep, line)
        lines.append(line)
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _man_pages(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("man*/*") if p.is_file())


def _read_man(path: Path) -> str | None:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        src = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return None
    if src.startswith(".so "):  # a link to another page
        return None
    return strip_roff(src)


def _mo_catalogues(lang: str) -> list[Path]:
    root = Path("/usr/share/locale")
    return sorted(p for d in sorted(root.glob(f"{lang}*")) for p in d.glob("LC_MESSAGES/*.mo"))


def _mo_pairs(path: Path) -> list[tuple[str, str]]:
    try:
        with open(path, "rb") as f:
            cat = gettext.GNUTranslations(f)._catalog  # noqa: SLF001 - stdlib parser of .mo files
    except (OSError, UnicodeDecodeError, Exception):  # noqa: BLE001 - malformed catalogues are skipped
        return []
    out = []
    for k, v in cat.items():
        if isinstance(k, tuple):  # plural forms: (msgid, n)
            k = k[0]
        if isinstance(k, str) and isinstance(v, str) and k and v:
            out.append((k, v))
    return out


def _balanced(streams: dict[str, Iterator[str]], label: str) -> Iterator[tuple[str, str]]:
    """Interleave streams, always drawing from the one that has produced the fewest bytes."""
    produced = dict.fromkeys(streams, 0)
    live = dict(streams)
    while live:
        kind = min(live, key=lambda k: produced[k])
        try:
            text = next(live[kind])
        except StopIteration:
            del live[kind]
            continue
        produced[kind] += len(text)
        yield f"{kind}:{label}", text


def _shuffled(paths: list[Path], rng: random.Random) -> list[Path]:
    paths = list(paths)
    rng.shuffle(paths)
    return paths


def english_texts(seed: int = 0) -> Iterator[tuple[str, str]]:
    """Yield ``(source_kind, text)`` of English prose, the source kinds balanced by bytes.

    Kinds: stdlib docstrings; man pages (the thousands of near-identical ``gcloud*`` pages
    excluded); license and copyright texts; gettext ``msgid`` strings.
    """
    rng = random.Random(seed)

    def docstrings() -> Iterator[str]:
        for p in _shuffled(_stdlib_files(), rng):
            t = _read(p)
            if t:
                yield from (d for d in _docstrings(t))

    def man() -> Iterator[str]:
        pages = [p for p in _man_pages(Path("/usr/share/man")) if not p.name.startswith("gcloud")]
        for p in _shuffled(pages, rng):
            text = _read_man(p)
            if text and len(text) > 100:
                yield text

    def licenses() -> Iterator[str]:
        paths = sorted(Path("/usr/share/common-licenses").glob("*")) + sorted(Path("/usr/share/doc").glob("*/copyright"))
        for p in _shuffled([p for p in paths if p.is_file()], rng):
            text = _read(p)
            if text and len(text) > 100:
                yield text

    def msgids() -> Iterator[str]:
        for p in _shuffled(_mo_catalogues("es"), rng):
            text = "\n".join(k for k, _ in _mo_pairs(p) if len(k) > 3)
            if len(text) > 100:
                yield text

    yield from _balanced(
        {"docstrings": docstrings(), "man": man(), "license": licenses(), "gettext-msgid": msgids()}, "english"
    )


def spanish_texts(seed: int = 0) -> Iterator[tuple[str, str]]:
    """Yield ``(source_name, text)`` of Spanish: gettext ``msgstr`` and Spanish man pages."""
    rng = random.Random(seed)
    items: list[tuple[str, Path]] = [("gettext-msgstr", p) for p in _mo_catalogues("es")]
    items += [("man-es", p) for p in _man_pages(Path("/usr/share/man/es"))]
    rng.shuffle(items)
    for kind, p in items:
        if kind == "gettext-msgstr":
            text = "\n".join(v for k, v in _mo_pairs(p) if len(v) > 3 and v != k)
        else:
            text = _read_man(p) or ""
        if len(text) > 100:
            yield f"{kind}:{p}", text


@dataclass
class CorpusManifest:
    """What went into a corpus file: sources, byte counts and a content hash."""

    name: str
    n_bytes: int = 0
    n_documents: int = 0
    sha256: str = ""
    sources: dict[str, int] = field(default_factory=dict)  # source kind -> documents

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "n_bytes": self.n_bytes,
            "n_documents": self.n_documents,
            "sha256": self.sha256,
            "sources": self.sources,
        }


def _write_capped(name: str, docs: Iterable[tuple[str, str]], path: Path, max_bytes: int) -> CorpusManifest:
    man = CorpusManifest(name)
    h = hashlib.sha256()
    with open(path, "w", encoding="utf-8") as f:
        for src, text in docs:
            text = text.replace(EOT, "")
            chunk = text + "\n" + EOT + "\n"
            b = chunk.encode("utf-8")
            if man.n_bytes + len(b) > max_bytes:
                if man.n_bytes > 0.95 * max_bytes:
                    break
                continue
            f.write(chunk)
            h.update(b)
            man.n_bytes += len(b)
            man.n_documents += 1
            kind = src.split(":", 1)[0]
            man.sources[kind] = man.sources.get(kind, 0) + 1
    if man.n_documents == 0:
        raise UnavailableError(f"no local {name} text was found; see lowprob.lm_bridge.corpus for the sources.")
    man.sha256 = h.hexdigest()[:16]
    return man


def build_corpus(
    out_dir: str | Path,
    *,
    code_bytes: int = 8_000_000,
    english_bytes: int = 8_000_000,
    spanish_bytes: int = 2_000_000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``code.txt``, ``english.txt``, ``spanish.txt`` and ``manifest.json`` into ``out_dir``.

    Documents are separated by ``<|endoftext|>`` lines. Returns the paths by name.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{k}.txt" for k in ("code", "english", "spanish")}
    manifests = [
        _write_capped("code", code_texts(seed), paths["code"], code_bytes),
        _write_capped("english", english_texts(seed), paths["english"], english_bytes),
        _write_capped("spanish", spanish_texts(seed), paths["spanish"], spanish_bytes),
    ]
    (out / "manifest.json").write_text(
        json.dumps({"seed": seed, "stdlib": str(_stdlib_dir()), "corpora": [m.to_json() for m in manifests]}, indent=1)
    )
    return paths


def token_counts(tokenizer: object, text_path: str | Path, vocab_size: int, *, chunk_chars: int = 1 << 20) -> np.ndarray:
    """Occurrences of each token id when the text file is tokenized (``int64 (V,)``).

    The text is split at ``<|endoftext|>`` document boundaries and encoded in batches.
    """
    counts = np.zeros(vocab_size, dtype=np.int64)
    text = Path(text_path).read_text(encoding="utf-8")
    docs = [d for d in text.split(EOT) if d.strip()]
    batch: list[str] = []
    size = 0
    for d in docs + [None]:  # type: ignore[list-item]
        if d is not None:
            batch.append(d)
            size += len(d)
        if batch and (d is None or size >= chunk_chars):
            for enc in tokenizer.encode_batch(batch):  # type: ignore[attr-defined]
                counts += np.bincount(np.asarray(enc.ids, dtype=np.int64), minlength=vocab_size)
            batch, size = [], 0
    return counts
