"""A checker for the book's prose: every measured number comes from a cell, and no wording
sends a reader somewhere they cannot follow.

    python -m zsl_lib.prose                     # every chapter of _toc.yml
    python -m zsl_lib.prose book/05_losses_and_calibrated_inference.ipynb

In the markdown cells of a chapter (notebooks) or page (.md), outside math (`$...$`,
`$$...$$`), code spans and fenced code, links' targets and `{glue:...}` roles, it reports:

* a **measured-looking number** typed as text: one with a decimal point, a percent sign, a
  plus-minus (`±`, `+-`) or a unit of time (s, min, minutes, h, hours, seconds). Such numbers
  must be glued from the cell that computes them. Exempt: a sentence that labels its numbers
  as a paper's (it names "the paper" and a table or figure), and the chapter's allow-list;
* a `{glue:...}` role whose backtick span holds more than a key and its format (a brace
  typed for the closing backtick runs the role into the text after it);
* a `{glue:...}` key that no code cell of the chapter glues (a key glued by an f-string,
  `glue(f"ch7_{key}_H", ...)`, is a pattern whose fields match any text);
* **wording a reader cannot follow**: "spec", "specification", "first edition", "this
  edition", "workplace", "target", "for now";
* a "chapter N" that the table of contents does not have.

The allow-list, `book/prose_allow.yml`, maps a chapter's file name to the exact texts it may
keep, each with the reason (e.g. a constant of the recipe: `learning rate 0.03`).
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .book import toc_pages
from .provenance import REPO_ROOT

ALLOW = REPO_ROOT / "book" / "prose_allow.yml"
PHRASES = ("spec", "specification", "first edition", "this edition", "workplace", "target", "for now")
TIME_UNITS = r"(?:s|sec|seconds?|min|minutes?|h|hours?)"
NUMBER = re.compile(r"(?<![\w.])[+-]?\d[\d,]*\.\d+(?:\s*" + TIME_UNITS + r"\b|\s*%)?"      # 3.14, 1.5 s, 2.5 %
                    r"|(?<![\w.])\d[\d,]*\s*%"                                             # 64 %
                    r"|(?<![\w.])\d[\d,]*\s*(?:±|\+-|\+/-)\s*\d"                           # 3 ± 1
                    r"|(?<![\w.])\d[\d,]*\s*" + TIME_UNITS + r"\b")                        # 133 s, 20 min
HIDDEN = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$|```.*?```|`[^`\n]*`|\]\([^)]*\)|\{[a-z:]+\}`[^`]*`"
                    r"|^#+ [^\n]*"                                                # headings ("## 9.3 ...")
                    r"|\b(?:[Ss]ections?|§|[Cc]hapters?|[Ee]qs?\.|[Tt]ables?|[Ff]igs?\.)\s*\d+(?:\.\d+)*"   # references
                    r"(?:\s*(?:,|and|-|–)\s*\d+(?:\.\d+)*)*", re.S | re.M)
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]*)`")                # its backtick span: key, or key:format
GLUE_CONTENT = re.compile(r"([\w.-]+)(?::[^\s{}]*)?")
GLUE_CALL = re.compile(r"""\bglue\(\s*(f?)(["'])""")
CHAPTER = re.compile(r"\b[Cc]hapters?\s+(\d+)")
PAPER_LABEL = re.compile(r"\bpaper('s)?\b.*\b(Table|Fig\.|Figure)\s*[\dIVX]+|\b(Table|Fig\.|Figure)\s*[\dIVX]+.*\bpaper('s)?\b",
                         re.I | re.S)


@dataclass(frozen=True)
class Problem:
    page: str
    cell: int
    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.page} [cell {self.cell}] {self.kind}: {self.text}"


def cells_of(page: Path) -> list[tuple[str, str]]:
    """(cell type, source) of a notebook's cells, or one markdown cell for a .md page."""
    if page.suffix == ".md":
        return [("markdown", page.read_text())]
    return [(c["cell_type"], "".join(c["source"])) for c in json.loads(page.read_text())["cells"]]


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, list item or paragraph of `text`."""
    bounds = [0] + [m.end() for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z(*`$\-])|\n\s*\n|\n\s*[-*] ", text)] + [len(text)]
    return list(zip(bounds[:-1], bounds[1:]))


def blank(match: re.Match) -> str:
    """The matched text as spaces (newlines kept), so that offsets stay those of the source."""
    return re.sub(r"[^\n]", " ", match.group(0))


def glue_keys(source: str) -> list[re.Pattern]:
    """The keys a code cell glues, each as a pattern that a `{glue}` role's key must match in
    full: a plain string is itself, an f-string's fields (`{...}`, read with their nesting, so
    a field may hold quotes) match any text."""
    keys = []
    for call in GLUE_CALL.finditer(source):
        formatted, quote, depth, pattern = call.group(1) == "f", call.group(2), 0, ""
        for char in source[call.end():]:
            if depth == 0 and char == quote:
                break
            if formatted and char == "{":
                depth += 1
                pattern += ".+" if depth == 1 else ""
            elif formatted and char == "}" and depth:
                depth -= 1
            elif depth == 0:
                pattern += re.escape(char)
        keys.append(re.compile(pattern))
    return keys


def covered(source: str, start: int, end: int, allowed) -> bool:
    """Whether an allow-listed text occurs in `source` around the span [start, end)."""
    for entry in allowed:
        for occurrence in re.finditer(r"\s+".join(map(re.escape, entry.split())), source):   # across line breaks
            if occurrence.start() <= start and end <= occurrence.end():
                return True
    return False


def chapter_numbers(pages: list[Path]) -> set[int]:
    return {int(m.group(1)) for p in pages if (m := re.match(r"(\d+)_", p.name))}


def check(page: Path, allowed: list[str] = (), known_chapters: set[int] | None = None) -> list[Problem]:
    """The problems of one page."""
    cells = cells_of(page)
    glued = [key for kind, source in cells if kind == "code" for key in glue_keys(source)]
    problems = []
    for index, (kind, source) in enumerate(cells):
        if kind != "markdown":
            continue
        for role in GLUE_ROLE.finditer(source):
            if not (content := GLUE_CONTENT.fullmatch(role.group(1))):
                problems.append(Problem(page.name, index, "glue role not closed by its backtick", role.group(0)[:60]))
            elif not any(pattern.fullmatch(content.group(1)) for pattern in glued):
                problems.append(Problem(page.name, index, "glue key no cell defines", content.group(1)))
        visible = HIDDEN.sub(blank, source)
        for start, end in sentences(source):
            if PAPER_LABEL.search(source[start:end]):
                continue
            for match in NUMBER.finditer(visible[start:end]):
                if not covered(source, start + match.start(), start + match.end(), allowed):
                    problems.append(Problem(page.name, index, "number not glued", match.group(0).strip()))
        for phrase in PHRASES:
            for match in re.finditer(rf"\b{re.escape(phrase)}\b", visible, re.I):
                context = " ".join(source[max(0, match.start() - 30):match.end() + 30].split())
                if not covered(source, match.start(), match.end(), allowed):
                    problems.append(Problem(page.name, index, f"wording '{phrase}'", context))
        if known_chapters is not None:
            for match in CHAPTER.finditer(source):
                if int(match.group(1)) not in known_chapters:
                    problems.append(Problem(page.name, index, "chapter not in _toc.yml", match.group(0)))
    return problems


def load_allow(path: Path = ALLOW) -> dict[str, list[str]]:
    """{page file name: [allowed texts]} from the allow-list (each entry: {text, reason})."""
    if not path.is_file():
        return {}
    raw = yaml.safe_load(path.read_text()) or {}
    for page, entries in raw.items():
        for entry in entries:
            if not entry.get("reason"):
                raise ValueError(f"{path}: entry {entry.get('text')!r} of {page} has no reason; say why it may stay")
    return {page: [entry["text"] for entry in entries] for page, entries in raw.items()}


def check_book(pages: list[Path] | None = None) -> list[Problem]:
    toc = toc_pages()
    allow = load_allow()
    return [problem for page in (pages or toc)
            for problem in check(page, allow.get(page.name, []), chapter_numbers(toc))]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.prose", description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="notebooks or .md pages (default: all of _toc.yml)")
    args = parser.parse_args(argv)
    problems = check_book([p.resolve() for p in args.pages] or None)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s)")
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
