"""Numbers in prose come from values: a lecture's markdown quotes no decimal number that its outputs do not show.

The rule (CONTRIBUTING.md, "Numbers in prose"), as this file applies it to the committed notebooks (read as JSON,
nothing is executed):

* A *decimal number* is a number written with a decimal point (`0.965`, `-6.3`, the two ends of `1.4-2.0`) or with a
  percent sign (`94%`, both ends of `94-96%`). Integers (`15 epochs`, `3 layers`, `28x28`, `4,000 digits`) are counts.
* It is *shown* when an output of the same notebook (stdout / stderr, a text, Markdown or HTML display, e.g. one made
  by `course_utils.results.say`) prints it as the prose writes it or with at most one more digit, compared without its
  sign: prose `0.37` is shown by `0.37` or `0.367`, `94.6%` by `94.6%` or `0.946`, never `0.4` by `0.367`; or when a
  code cell writes it as a literal (a setting such as `Dropout(0.5)`: the reader sees it in the cell).
* Not scanned: math (`$...$`, `$$...$$`), code spans and fenced code, link targets, heading numbers and references to
  numbered parts (`section 2.1`, `§2.3`, `Fig. 7`, `Table 1`, `eq. 5`), and quoted literature: a sentence that cites
  its source by an author-year reference (`(Ng and Jordan, 2001)`, `Burda et al. (2015)`, `Higgins (2017)`), an
  `arXiv:` id, a numbered reference `[3]`, or the words "reported by"; and everything below a "References" heading.
  A markdown table is one sentence together with the sentence just before it (its caption), so a quoted table cites
  its source there.
"""
from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import pytest

LECTURES = Path(__file__).resolve().parents[1] / "lectures"

NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"
# a number (sign not captured), an optional percent sign, and the far end of a percent range such as 94-96%
DECIMAL = re.compile(rf"(?<![\w.@/])[-+−]?({NUMBER})(\s*%)?(?:\s*(?:-|–|to)\s*[-+−]?({NUMBER})\s*%)?(?![\w.]\d)")
MATH = re.compile(r"\$\$.*?\$\$|(?<!\\)\$[^$\n]+?(?<!\\)\$", re.S)
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
LINK = re.compile(r"\]\([^)]*\)|https?://\S+|<[^>\n]+>")
PARTS = re.compile(r"(?i)(?:\b(?:sections?|fig(?:ure)?s?\.?|tables?|eqs?\.|equations?)\s*\(?|§\s*)\d+(?:\.\d+)*[a-z]?"
                   r"(?:\s*(?:-|–|and|to)\s*\d+(?:\.\d+)*[a-z]?)?")
HEADING_NUMBER = re.compile(r"^(#+)\s*§?\d+(?:\.\d+)*[a-z]?\.?")
NAME = r"[A-Z][\w'’-]+"
CITATION = re.compile(
    rf"\bet al\.?,?\s*\(?(?:19|20)\d\d"                                        # Burda et al. (2015), et al., 2021
    rf"|\({NAME}(?:\s+(?:and|&)\s+{NAME})?,?\s+(?:19|20)\d\d[a-z]?\b"          # (Ng and Jordan, 2001)
    rf"|\b{NAME}(?:\s+(?:and|&)\s+{NAME})?\s+\((?:19|20)\d\d[a-z]?\b"          # Higgins (2017)
    r"|\barXiv:?\s*\d{4}\.\d{4,5}|\[\d+(?:,\s*\d+)*\]|\breported by\b")
REFERENCES = re.compile(r"#+\s*(references|bibliography|further reading)\b", re.I)
ABBREVIATIONS = ("et al.", "e.g.", "i.e.", "cf.", "vs.", "Fig.", "fig.", "eq.", "Eq.", "approx.", "resp.")
OUTPUT_NUMBER = re.compile(r"(?<![\w.])[-+]?(\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?)(\s*%)?")


def blocks(markdown: str) -> list[tuple[str, str]]:
    """(kind, text) for each paragraph, list item, heading and table of a markdown cell (math, code, links removed)."""
    text = LINK.sub(" ", CODE.sub(" ", MATH.sub(" ", markdown)))
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if REFERENCES.match(stripped):
            break                                      # a reference list is literature, not prose
        kind = ("blank" if not stripped else "heading" if stripped.startswith("#") else
                "table" if stripped.startswith("|") else
                "item" if re.match(r"([-*+]|\d+\.)\s", stripped) else "text")
        if kind == "blank":
            out.append(("blank", []))
        elif kind == "heading":
            out.append(("heading", [HEADING_NUMBER.sub(r"\1", stripped)]))
        elif kind == "table" and out and out[-1][0] == "table":
            out[-1][1].append(stripped)
        elif kind == "text" and out and out[-1][0] in ("text", "item"):
            out[-1][1].append(stripped)
        else:
            out.append((kind if kind != "item" else "item", [stripped]))
    return [(kind, " ".join(lines)) for kind, lines in out if kind != "blank"]


def sentences(markdown: str) -> list[str]:
    """The units the rule reads: the sentences of every block; a table joined to the sentence before it."""
    units: list[str] = []
    for kind, text in blocks(markdown):
        if kind == "table":
            units[-1:] = [(units[-1] + " " if units else "") + text]
            continue
        pieces = re.split(r"(?<=[.!?])\s+(?=[A-Z(\[*_\"'])", text)
        merged: list[str] = []
        for piece in pieces:
            if merged and merged[-1].endswith(ABBREVIATIONS):
                merged[-1] += " " + piece
            else:
                merged.append(piece)
        units += merged
    return units


def prose_decimals(markdown: str) -> list[tuple[str, bool, str]]:
    """(number, is a percent, sentence) for every decimal number the rule scans in a markdown cell."""
    found = []
    for sentence in sentences(markdown):
        if CITATION.search(sentence):
            continue
        for m in DECIMAL.finditer(PARTS.sub(" ", sentence)):
            first, percent, last = m.group(1), bool(m.group(2) or m.group(3)), m.group(3)
            for number in (first, last):
                if number and ("." in number or percent):
                    found.append((number.replace(",", ""), percent, sentence))
    return found


def _output_texts(nb: dict) -> list[str]:
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
            for mime in ("text/plain", "text/markdown", "text/html"):
                value = out.get("data", {}).get(mime)
                if value is not None:
                    texts.append("".join(value) if isinstance(value, list) else value)
    return texts


def shown_numbers(nb: dict) -> list[tuple[float, bool, int]]:
    """(absolute value, printed as a percent, decimals as printed) for every number in the notebook's outputs."""
    numbers = []
    for text in _output_texts(nb):
        for m in OUTPUT_NUMBER.finditer(text):
            digits = m.group(1).replace(",", "")
            mantissa, _, exponent = digits.lower().partition("e")
            decimals = len(mantissa.partition(".")[2]) - int(exponent or 0)
            numbers.append((abs(float(digits)), bool(m.group(2)), decimals))
    return numbers


def code_literals(nb: dict) -> set[float]:
    """The numeric literals of the notebook's code cells (comments and strings are not code)."""
    values = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            for tok in tokenize.generate_tokens(io.StringIO(source).readline):
                if tok.type == tokenize.NUMBER and not tok.string.lower().endswith("j"):
                    values.add(abs(float(tok.string.replace("_", ""))))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
    return values


def is_shown(number: str, percent: bool, shown: list[tuple[float, bool, int]], literals: set[float]) -> bool:
    """Whether an output prints `number` (as written, or with one more digit) or a code cell writes it."""
    d = len(number.partition(".")[2])
    p, half = float(number), 0.5 * 10 ** -d + 1e-9
    for value, value_percent, e in shown:
        candidates = [(value, e)]
        if percent and not value_percent:
            candidates.append((100 * value, e - 2))
        if value_percent and not percent:
            candidates.append((value / 100, e + 2))
        if any(d <= digits <= d + 1 and abs(v - p) <= half for v, digits in candidates):
            return True
    return any(abs(v - p) < 1e-12 or (percent and abs(100 * v - p) < 1e-9) for v in literals)


def unshown(path: Path) -> list[str]:
    """'cell i: "number" in: sentence' for every decimal number of the lecture's prose that nothing shows."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    shown, literals = shown_numbers(nb), code_literals(nb)
    problems = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for number, percent, sentence in prose_decimals(source):
            if not is_shown(number, percent, shown, literals):
                problems.append(f'cell {i}: "{number}{"%" if percent else ""}" in: {sentence[:160]}')
    return problems


# ---- the rule itself, on small examples

def numbers_in(markdown: str) -> list[str]:
    return [n + ("%" if pct else "") for n, pct, _ in prose_decimals(markdown)]


def test_decimal_numbers_are_points_and_percents_not_counts():
    assert numbers_in("The ViT reaches 0.965 after 15 epochs on 4,000 digits of 28x28 pixels, 3 layers.") == ["0.965"]
    assert numbers_in("It ranged from -6.3 to +0.9 nats, 1.4-2.0 points below.") == ["6.3", "0.9", "1.4", "2.0"]
    assert numbers_in("Over 5 seeds: 94-96%, and 93.5-96% of the images; 52 % of the codes.") == \
        ["94%", "96%", "93.5%", "96%", "52%"]
    assert numbers_in("Seed 003 and lecture 10, 1,000 test digits, mAP@0.5 aside.") == []


def test_math_code_links_and_numbered_parts_are_not_prose():
    assert numbers_in("Derived: $\\log 2\\approx 0.693$ and $$\\sigma = 0.8$$ here.") == []
    assert numbers_in("Set `EOS_COEF = 0.01` and see [the paper](https://x.org/a/2.5).") == []
    assert numbers_in("### 2.5 Training\nAs section 2.2 and §2.3 show (Fig. 7, Table 1, sections 2.1-2.3).") == []
    assert numbers_in("```\nlr = 0.001\n```\nDone.") == []


def test_a_sentence_that_cites_its_source_is_quoted_literature():
    assert numbers_in("Burda et al. (2015) report 86.76 nats. We get 106.9 nats.") == ["106.9"]
    assert numbers_in("Hinton et al. 2015 report 0.74% errors (Ng and Jordan, 2001).") == []
    assert numbers_in("The limit is 0.5 (Higgins (2017)). See arXiv:1509.00519 for 86.76; or [3] for 1.5.") == []
    assert numbers_in("In 2021 the score was 88.55.") == ["88.55"]            # a year alone is no citation
    table = ("The paper's headline numbers (Dosovitskiy et al., 2021, Table 2):\n\n| data | ViT |\n| --- | --- |\n"
             "| ImageNet | 88.55 |")
    assert numbers_in(table) == []
    assert numbers_in("We get 0.97.\n\n## References\n\n* C. M. Bishop, Springer 2006: ch. 4.2-4.3, 10.1.") == ["0.97"]
    assert numbers_in("Our numbers:\n\n| data | ViT |\n| --- | --- |\n| digits | 96.5 |") == ["96.5"]


def test_shown_means_printed_as_written_or_one_digit_more():
    nb = {"cells": [{"cell_type": "code", "source": "BETA = 0.5\nx = 3  # 0.25 in a comment\n", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "acc 0.946 | gap -6.31 | share 41% | err 7.22e-05\n"}]}]}
    shown, literals = shown_numbers(nb), code_literals(nb)
    for number, pct in [("0.946", False), ("0.95", False), ("94.6", True), ("95", True), ("6.31", False),
                        ("6.3", False), ("0.41", False), ("41", True), ("0.5", False), ("50", True),
                        ("0.0000722", False)]:
        assert is_shown(number, pct, shown, literals), number
    for number, pct in [("0.9", False), ("94.0", True), ("6.4", False), ("0.25", False), ("2.0", False)]:
        assert not is_shown(number, pct, shown, literals), number


# ---- every lecture

@pytest.mark.parametrize("path", sorted(LECTURES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_prose_numbers_are_shown_by_the_notebook(path):
    problems = unshown(path)
    assert not problems, (f"{path.name} quotes decimal numbers that none of its outputs shows: print them with "
                          f"course_utils.results.say() or point at the printed line instead (CONTRIBUTING.md, "
                          f"'Numbers in prose'):\n  " + "\n  ".join(problems))
