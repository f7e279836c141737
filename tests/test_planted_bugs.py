"""Every check can fail: a bug planted in a lecture's checked code makes its checked cell fail.

Each row of BUGS names a lecture's checked cell (by a marker: a piece of its source that occurs in exactly one code
cell), the cells it depends on (definitions and small data, never a training cell; `DEFS` runs only the imports,
functions and classes of a cell that also trains or plots), and a planted bug: one piece of source text replaced by
another, exactly once, in one of those cells. The test runs the cells from the committed notebook in a fresh
namespace in this process, first as they are (the check must pass), then with the bug (the check must raise, by its
own assert or error). Cells are found by content, not by index, so edits elsewhere in a lecture do not move them.
`python tests/test_planted_bugs.py` prints the table of bugs and the cells that catch them.
"""
from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

LECTURES = Path(__file__).resolve().parents[1] / "lectures"
DEFS = "defs"          # run only the imports, functions and classes of the cell

pytestmark = pytest.mark.slow  # about a minute in all: each row runs its lecture's set-up, data and checks twice


@dataclass(frozen=True)
class Bug:
    lecture: str                       # the notebook's name prefix, "00"
    what: str                          # the planted bug, in words (the table's first column)
    cell: str                          # marker of the cell the bug is planted in
    old: str | tuple                   # source text replaced (or several, each replaced by its partner) ...
    new: str | tuple                   # ... by this, each exactly once
    check: str                         # marker of the checked cell that must catch it
    needs: tuple = ()                  # markers (or (marker, DEFS)) of the cells run before, in this order
    before: str = "no"                 # what the lecture's checks did with this bug before issue 19


def notebook(lecture: str) -> tuple[str, list[str]]:
    """(file name, sources of the code cells) of a lecture."""
    (path,) = LECTURES.glob(f"{lecture}_*.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return path.name, ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                       for c in cells if c["cell_type"] == "code"]


def find(sources: list[str], marker: str) -> str:
    """The one code cell whose source contains marker."""
    hits = [s for s in sources if marker in s]
    assert len(hits) == 1, f"marker {marker!r} is in {len(hits)} code cells, not exactly one"
    return hits[0]


def definitions(source: str) -> str:
    """Only the imports, functions and classes of a cell (what a later cell can use without its training)."""
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    tree = ast.parse(source)
    return "\n\n".join(ast.get_source_segment(source, node) for node in tree.body if isinstance(node, keep))


def without_magics(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def run(bug: Bug, planted: bool) -> dict:
    """Execute the bug's cells in a fresh namespace, with or without the bug; return the namespace."""
    import matplotlib.pyplot as plt

    name, sources = notebook(bug.lecture)
    steps = [(m, "all") if isinstance(m, str) else m for m in bug.needs] + [(bug.check, "all")]
    assert bug.cell in [m for m, _ in steps], f"{bug.what}: the planted cell is not among the cells run"
    ns: dict = {"__name__": f"lecture_{bug.lecture}"}
    for marker, how in steps:
        source = find(sources, marker)
        if planted and marker == bug.cell:
            olds, news = (bug.old, bug.new) if isinstance(bug.old, tuple) else ((bug.old,), (bug.new,))
            for k, old in enumerate(olds):                  # all at once: a new text may be another's old one
                assert source.count(old) == 1, f"{bug.what}: {old!r} occurs {source.count(old)} times"
                source = source.replace(old, f"\0planted {k}\0")
            for k, new in enumerate(news):
                source = source.replace(f"\0planted {k}\0", new)
        source = without_magics(source)
        if how == DEFS:
            source = definitions(source)
        exec(compile(source, f"<{name}: cell with {marker!r}>", "exec"), ns)
        plt.close("all")
    return ns


SETUP = "device, gen = setup(seed=0)"                   # every lecture's configuration cell
BAYES = "p_z = joint.sum((0, 1))"                       # 00: product rule and Bayes on the ink of the digits
VAE_TERMS, IW = "def gaussian_kl(", "iw_prior = iw_log_px(IgnoresZ("    # 02: the loss terms; the IW bound
GAN_STEPS = "no_grad_to_g = all("                       # 04: which parameters move in which step
SWIN_REF = "def swin_block_reference("                  # 07: SwinBlock against attention in image coordinates
SWIN_NEEDS = (SETUP, "def patchify(", "class MultiHeadSelfAttention(", "def window_partition(",
              "def shifted_window_mask(", "class WindowAttention(", "class SwinBlock(")
CLIP_CHECK = "analytic_t = ((("                        # 08: the symmetric loss, its gradients, the temperature's
DETR_CHECK, DETR_NEEDS = "permuting the object queries permutes", (SETUP, "def sine_position_encoding(")   # 09
SAMPLER, DDPM_CHECK = "def ddpm_sample(net: UNet", "def optimal_eps("            # 10: the sampler, known answer
DDPM_NEEDS = (SETUP, "def linear_betas(", ("class ImageEncoder(", DEFS), "class TimeEmbedding(", SAMPLER)
ROLL, ROLL_BACK = "h, shifts=(-self.shift, -self.shift)", "h, shifts=(self.shift, self.shift)"

BUGS = [
    Bug("00", "sum rule: p(z) taken with its two values swapped", BAYES,
        "p_z = joint.sum((0, 1))", "p_z = joint.sum((0, 1))[::-1]", check=BAYES,
        needs=(SETUP, "X, Y = img[:, :14].sum((1, 2))")),
    Bug("00", "likelihood p(x|y) normalised over the digits (it is p(y|x))", BAYES,
        "p_x_given_y = p_xy / p_y[None]", "p_x_given_y = p_xy / p_xy.sum(1, keepdims=True)", check=BAYES,
        needs=(SETUP, "X, Y = img[:, :14].sum((1, 2))")),
    Bug("01", "max-pooling switches with row and column of the window swapped", "def max_pool_by_hand(",
        "r, c = divmod(int(window.argmax()), k)", "c, r = divmod(int(window.argmax()), k)",
        check="def max_pool_by_hand(", needs=(SETUP,), before="yes"),
    Bug("02", "gaussian_kl, the KL of training, half as large (too small: it lowers the -ELBO)", VAE_TERMS,
        "return 0.5 * (logvar.exp()", "return 0.25 * (logvar.exp()", check="gaussian_kl == torch kl_divergence",
        needs=(SETUP, VAE_TERMS)),
    Bug("02", "gaussian_kl with the sign of log sigma^2 flipped", VAE_TERMS,
        "- 1.0 - logvar)", "- 1.0 + logvar)", check="gaussian_kl == torch kl_divergence", needs=(SETUP, VAE_TERMS)),
    Bug("02", "reparameterize scales eps by sigma^2 instead of sigma", VAE_TERMS,
        "torch.exp(0.5 * logvar) * torch.randn_like(mu)", "torch.exp(logvar) * torch.randn_like(mu)",
        check="gaussian_kl == torch kl_divergence", needs=(SETUP, VAE_TERMS)),
    Bug("02", "importance-weighted bound without the 1/K (log-sum instead of log-mean)", "def iw_log_px(",
        "torch.logsumexp(log_w, 0) - math.log(k)", "torch.logsumexp(log_w, 0)", check=IW,
        needs=(SETUP, VAE_TERMS, "def neg_elbo_terms(", "def iw_log_px(")),
    Bug("02", "importance weights with the prior term's sign flipped", "def iw_log_px(",
        "log_w = log_px_z + Normal(0.0, 1.0)", "log_w = log_px_z - Normal(0.0, 1.0)", check=IW,
        needs=(SETUP, VAE_TERMS, "def neg_elbo_terms(", "def iw_log_px(")),
    Bug("03", "PixelCNN mask keeps the rows below the centre (the future leaks in)", "class MaskedConv2d(",
        "mask[c + 1:, :] = 0", "mask[c + 1:, :] = 1", check="mask_a, mask_b = MaskedConv2d(",
        needs=(SETUP, "class MaskedConv2d(", "class PixelCNN("), before="yes"),
    Bug("04", "discriminator step without .detach() on the fakes", "def d_step(",
        "D(fake.detach(), *cond)", "D(fake, *cond)", check=GAN_STEPS, needs=(SETUP, "def d_step(", "class Toy("),
        before="only by accident: its 'G moved False' held; the cell died of the G step's second backward"),
    Bug("05", "soft loss without its T^2 factor", "def distillation_loss(",
        "return alpha * T**2 * soft", "return alpha * soft", check="distillation_loss == alpha T^2",
        needs=(SETUP, "def softmax_t(", "def distillation_loss("), before="yes"),
    Bug("06", "batch-hard mining picks the easiest negative instead of the hardest", "def triplet_batch_hard(",
        'd.masked_fill(same, float("inf")).amin(1)', 'd.masked_fill(same, -float("inf")).amax(1)',
        check="brute_hard = np.mean(", needs=(SETUP, "def pairwise_sq_dist(", "def triplet_batch_hard("),
        before="yes"),
    Bug("07", "SwinBlock rolls by +shift (and back by -shift) instead of -shift", "class SwinBlock(",
        (ROLL, ROLL_BACK), (ROLL_BACK, ROLL), check=SWIN_REF, needs=SWIN_NEEDS, before="no: only the mask was checked"),
    Bug("07", "SwinBlock does not roll the map back after the shifted windows", "class SwinBlock(",
        ROLL_BACK, "h, shifts=(0, 0)", check=SWIN_REF, needs=SWIN_NEEDS, before="no"),
    Bug("08", "temperature gradient with the wrong sign (the loss value unchanged)", "def clip_loss(",
        "logits = I @ T.T * log_scale.exp()", "logits = I @ T.T * (2 * log_scale.detach() - log_scale).exp()",
        check=CLIP_CHECK, needs=(SETUP, "def clip_loss("), before="no: only a finite gradient was asserted"),
    Bug("09", "sine encoding without the sin/cos pairing of frequencies (a new frequency per channel)",
        "def sine_position_encoding(", "freq = 10000 ** (2 * (torch.arange(half) // 2) / half)",
        "freq = 10000 ** (2 * torch.arange(half) / half)", check=DETR_CHECK, needs=DETR_NEEDS,
        before="no: only the shape, distinct rows and a parameter count were checked"),
    Bug("09", "sine encoding with the row and column halves swapped", "def sine_position_encoding(",
        "torch.cat([py, px], -1)", "torch.cat([px, py], -1)", check=DETR_CHECK, needs=DETR_NEEDS, before="no"),
    Bug("10", "ddpm_sample's reverse step adds the predicted noise instead of removing it", SAMPLER,
        "x = (x - b[k] / (1 - ab[k]).sqrt() * eps)", "x = (x + b[k] / (1 - ab[k]).sqrt() * eps)",
        check=DDPM_CHECK, needs=DDPM_NEEDS, before="no: only the respaced alpha-bar was checked"),
    Bug("10", "ddpm_sample adds noise of variance beta^2 instead of beta", SAMPLER,
        "x = x + b[k].sqrt() * torch.randn", "x = x + b[k] * torch.randn", check=DDPM_CHECK, needs=DDPM_NEEDS),
    Bug("10", "classifier-free guidance with the wrong sign (pushes away from the condition)", SAMPLER,
        "e_c + w[i:i + chunk] * (e_c - e_0)", "e_c - w[i:i + chunk] * (e_c - e_0)", check=DDPM_CHECK, needs=DDPM_NEEDS),
    Bug("10", "guided sampling evaluates the condition and the null condition in swapped order", SAMPLER,
        "torch.cat([cs, null[:len(xs)]])", "torch.cat([null[:len(xs)], cs])", check=DDPM_CHECK, needs=DDPM_NEEDS),
    Bug("10", "the UNet ignores its condition", "class TimeEmbedding(",
        "if self.cond is not None and c is not None:", "if False:", check="probe_unet = UNet(",
        needs=(SETUP, ("class ImageEncoder(", DEFS), "class TimeEmbedding("), before="yes"),
    Bug("11", "freeze() switches off the gradients but leaves BatchNorm in training mode", "def freeze(",
        "return module.eval()", "return module", check="frozen body, 3 SGD steps",
        needs=(SETUP, "def freeze("), before="yes"),
]


@pytest.fixture(autouse=True)
def _quiet_setup(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_DATA_SOURCE", "embedded")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: f"{b.lecture}-{b.what[:40]}")
def test_the_check_passes_as_committed_and_fails_with_the_planted_bug(bug, capsys):
    import torch

    threads = torch.get_num_threads()
    try:
        run(bug, planted=False)                          # the check holds for the lecture's own code
        with pytest.raises(AssertionError):              # the check's own assert, not an error on the way
            run(bug, planted=True)
    finally:
        torch.set_num_threads(threads)                   # setup() in a lecture's first cell sets the thread count


CHECKS = {                                              # the checked cells, in words, for the table
    BAYES: "product rule and Bayes, every factor against its count over the digits",
    "def max_pool_by_hand(": "max-pooling and unpooling by hand against F.max_pool2d / F.max_unpool2d",
    "gaussian_kl == torch kl_divergence": "the loss terms against torch.distributions and Monte Carlo",
    IW: "the IW bound on a model with known log p(x): exact at q = p(z), -log p(x) <= -IW <= -ELBO",
    "mask_a, mask_b = MaskedConv2d(": "causality of the PixelCNN by autograd (each output's dependence map)",
    GAN_STEPS: "which parameters move, and whether a gradient reaches G, in the D step",
    "distillation_loss == alpha T^2": "distillation_loss against F.kl_div and F.cross_entropy",
    "brute_hard = np.mean(": "batch-all and batch-hard mining against brute force",
    SWIN_REF: "SwinBlock against attention in image coordinates over the shifted windows",
    CLIP_CHECK: "the temperature's gradient against sum(dL/dlogits * logits)",
    DETR_CHECK: "the sine encoding against its formula, entry by entry",
    DDPM_CHECK: "ddpm_sample with the optimal predictor of Gaussian pixels: exact chain moments, data moments, "
                "conditions and guidance",
    "probe_unet = UNet(": "the UNet's output depends on t and on the condition",
    "frozen body, 3 SGD steps": "a frozen body keeps parameters and BatchNorm buffers through 3 SGD steps",
}


def table() -> str:
    """The markdown table of planted bugs and the checks that catch them (for the README)."""
    rows = ["| lecture | planted bug | caught by | caught before issue 19 |", "| --- | --- | --- | --- |"]
    for bug in BUGS:
        name, _ = notebook(bug.lecture)
        cells = [name[:-6], bug.what, CHECKS[bug.check], bug.before]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def test_every_row_names_its_check_in_words():
    assert {bug.check for bug in BUGS} <= set(CHECKS), "add the new check's description to CHECKS"


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    print(table())
