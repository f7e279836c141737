"""The README's seed-topic table: every section and graded part it names exists, and every seed topic has a row."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS_INDEX = ROOT.parent / "shared" / "seeds" / "README.md"
HEADING = "### Seed topics: where each is taught and graded"
LECTURE_REF = re.compile(r"(\d\d) §\s?(.+)")
README_REF = re.compile(r"README §\s?(.+)")
GRADED_REF = re.compile(r"(a\d\d) (Part \d+|Q\d+|§\d+) \((\d+) points?\)")

# Every topic of the seeds' index (../shared/seeds/README.md), deck by deck, exactly as the index words it.
# A row of the deck must name it in its topic cell; test_topic_list_is_the_index checks this list against the index.
TOPICS = {
    "000": ["DETR decoder and object queries", "autoencoders", "PCA vs conv AE on MNIST (7x7 latent)",
            "homotopy in pixel vs latent space", "KL divergence and the ELBO derivation step by step",
            "Gaussian KL in closed form", "reparameterization", "conditional VAE and style transfer",
            "cVAE latent space", "GAN training (discriminator frozen for the generator step)", "minimax",
            "conditional GAN", "VAE/GAN (Larsen et al. 2016)", "knowledge distillation", "temperature softmax",
            "cross-entropy gradient (1/T)(q_i - p_i)", "high-temperature limit (1/(N T^2))(z_i - v_i)"],
    "001": ["autoencoder", "manifold learning", "VAE derivation", "Gaussian KL", "conditional VAE and style transfer",
            "transfer learning", "Siamese networks", "contrastive and triplet loss", "softmax loss",
            "normalized softmax", "SphereFace", "CosFace", "ArcFace", "GAN losses (minimax and non-saturating)",
            "GAN+VAE"],
    "002": ["expectation", "variance", "conditional probability", "Bayes", "maximum likelihood",
            "discriminative vs generative models", "autoencoders", "dimensionality reduction (2-D MNIST latent)",
            "anomaly detection", "denoising", "inpainting", "super-resolution", "deblurring",
            "DeepFakes (shared encoder, two decoders)", "GLO (no encoder, latents on a ball, optimized)",
            "KL properties", "VAE and ELBO", "reconstruction vs regularization", "sampling", "latent space map",
            "beta-VAE", "image editing with VAE", "VAE drawbacks", "VQ-VAE", "nearest codebook vector",
            "straight-through gradient", "codebook and commitment losses", "PixelCNN prior"],
    "003": ["ViT", "patches", "linear projection", "results table", "Swin (shifted windows)", "CLIP",
            "symmetric contrastive loss", "zero-shot classification by prompts", "sensitivity to prompts",
            "CLIP + StyleGAN", "DALL-E", "dVAE with Gumbel-softmax relaxation", "KL to uniform prior",
            "autoregressive transformer over text + image tokens", "DALL-E 2 (CLIP + diffusion prior + decoder)",
            "DDPM", "forward noising", "reverse denoising with a UNet", "L_simple"],
    "004": ["autoencoders", "conv AE", "pooling vs strided conv", "size formula", "max unpooling", "transposed conv",
            "denoising AE", "sparse AE (KL sparsity penalty)", "applications", "latent space problems", "VAE",
            "variational inference", "KL to the prior", "only-reconstruction vs only-KL latent maps", "GAN",
            "discriminator and generator costs", "minimax", "the course's grading", "homework points",
            "a leaderboard component", "point totals mapped to grades 1-5"],
}


def table_rows() -> list[list[str]]:
    """The rows (seed, topic, lecture section, graded part) of the README's seed-topic table."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert HEADING in lines, f"README.md has no section {HEADING!r}"
    rows = []
    for line in lines[lines.index(HEADING) + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("| ") and not line.startswith(("| seed |", "| --- |")):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert rows, f"the section {HEADING!r} holds no table rows"
    return rows


def canonical(heading: str) -> str:
    """A heading as the table cites it: '2. Title', '2 · Title' and '2.1 Title' become '2 Title', '2.1 Title'."""
    match = re.match(r"(\d+[a-z]?(?:\.\d+)*)(?:\.|\s+·)?\s+(\S.*)$", heading.strip())
    return f"{match[1]} {match[2]}" if match else heading.strip()


def markdown_headings(cells: list[str]) -> set[str]:
    """The canonical text of every heading line in the markdown cells (fenced code skipped)."""
    found, fence = set(), False
    for line in "\n".join(cells).splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (match := re.match(r"#{1,6} (.+)$", line)):
            found.add(canonical(match[1]))
    return found


def notebook(pattern: str) -> dict:
    """The one notebook matching pattern under the course root, as JSON."""
    paths = sorted(ROOT.glob(pattern))
    assert len(paths) == 1, f"expected one notebook matching {pattern}, found {[str(p) for p in paths]}"
    return json.loads(paths[0].read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    """A cell's source as one string."""
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def lecture_headings(number: str) -> set[str]:
    """The canonical headings of lecture NN."""
    cells = notebook(f"lectures/{number}_*.ipynb")["cells"]
    return markdown_headings([source(c) for c in cells if c["cell_type"] == "markdown"])


def part_labels(heading: str) -> list[str]:
    """The parts a heading opens: 'Part 3', 'Parts 6-9', 'Q4' or a numbered '2. ...' (cited as '§2')."""
    if match := re.match(r"Parts (\d+)-(\d+)\b", heading):
        return [f"Part {k}" for k in range(int(match[1]), int(match[2]) + 1)]
    for pattern, label in ((r"Part (\d+)\b", "Part {}"), (r"Q(\d+)\b", "Q{}"), (r"(\d+)\.\s", "§{}")):
        if match := re.match(pattern, heading):
            return [label.format(match[1])]
    return []


def graded_parts(assignment: str) -> dict[str, int]:
    """Points of every part of solutions/aNN_*: its graded cells; a 'Parts a-b' heading gives one cell per part."""
    parts: dict[str, int] = {}
    labels: list[str] = []
    points: list[int] = []

    def close() -> None:
        if len(labels) == 1:
            parts[labels[0]] = sum(points)
        elif labels:
            assert len(points) == len(labels), f"{assignment}: {labels} have {len(points)} graded cells"
            parts.update(zip(labels, points))

    for cell in notebook(f"solutions/{assignment}_*/{assignment}_*.ipynb")["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "markdown" and not meta.get("solution"):
            for line in source(cell).splitlines():
                if match := re.match(r"#{1,2} (.+)$", line):
                    close()
                    labels, points = part_labels(match[1]), []
        if meta.get("grade") and meta.get("points") is not None:
            points.append(int(meta["points"]))
    close()
    return parts


def code_spans(cell: str) -> list[str]:
    """The inline code spans of a table cell."""
    return re.findall(r"`([^`]+)`", cell)


def test_table_is_grouped_by_deck():
    seeds = [row[0] for row in table_rows()]
    assert all(len(row) == 4 for row in table_rows()), "every row has four cells: seed, topic, lecture, graded part"
    assert set(seeds) <= set(TOPICS), f"unknown decks {set(seeds) - set(TOPICS)}"
    assert seeds == sorted(seeds), "rows are grouped by deck, in deck order"


def test_every_lecture_section_exists():
    headings = {}
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    readme_headings = markdown_headings(readme)
    for seed, topic, lecture, _ in table_rows():
        refs = code_spans(lecture)
        assert refs, f"{seed} {topic!r}: no lecture section"
        for ref in refs:
            if match := README_REF.fullmatch(ref):
                assert match[1] in readme_headings, f"{seed} {topic!r}: README.md has no heading {match[1]!r}"
                continue
            match = LECTURE_REF.fullmatch(ref)
            assert match, f"{seed} {topic!r}: {ref!r} is not written `NN §number title`"
            number, title = match[1], match[2].strip()
            if number not in headings:
                headings[number] = lecture_headings(number)
            assert title in headings[number], (
                f"{seed} {topic!r}: lecture {number} has no heading {title!r}; its headings: {sorted(headings[number])}")


def test_every_graded_part_exists_with_its_points():
    parts = {}
    for seed, topic, _, graded in table_rows():
        refs = [ref for ref in code_spans(graded) if re.match(r"a\d\d ", ref)]
        assert refs or re.match(r"not graded: \w", graded), (
            f"{seed} {topic!r}: name a graded part (`aNN Part k (n points)`) or say 'not graded: <reason>'")
        for ref in refs:
            match = GRADED_REF.fullmatch(ref)
            assert match, f"{seed} {topic!r}: {ref!r} is not written `aNN Part k (n points)`"
            assignment, label, points = match[1], match[2], int(match[3])
            if assignment not in parts:
                parts[assignment] = graded_parts(assignment)
            assert label in parts[assignment], (
                f"{seed} {topic!r}: {assignment} has no {label}; its parts: {sorted(parts[assignment])}")
            assert parts[assignment][label] == points, (
                f"{seed} {topic!r}: {assignment} {label} is worth {parts[assignment][label]} points, not {points}")


def test_every_seed_topic_has_a_row():
    rows = table_rows()
    for seed, topics in TOPICS.items():
        cells = " ".join(row[1].lower() for row in rows if row[0] == seed)
        missing = [topic for topic in topics if topic.lower() not in cells]
        assert not missing, f"seed {seed}: no row names {missing}"


def test_topic_list_is_the_index():
    if not SEEDS_INDEX.exists():
        pytest.skip(f"{SEEDS_INDEX} is not on this machine (the seeds sit beside the course checkout)")
    index = {}
    for line in SEEDS_INDEX.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"\| (\d{3})_\w+\.txt \| [^|]+ \| (.+) \|$", line):
            index[match[1]] = match[2]
    assert set(index) == set(TOPICS), f"the index lists decks {sorted(index)}, the test {sorted(TOPICS)}"
    for seed, topics in TOPICS.items():
        rest = index[seed]
        for topic in sorted(topics, key=len, reverse=True):
            assert topic in rest, f"seed {seed}: {topic!r} is not (or no longer) in the index"
            rest = rest.replace(topic, " ")
        assert re.fullmatch(r"[\s,;:()]*", rest), f"seed {seed}: the index's topics {rest!r} are not in TOPICS"
