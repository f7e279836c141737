"""The "without X" rules judge the code the graded functions run (no kernel, seconds).

Each false positive of the former word-based rule (a docstring, a parameter named like an API, a scratch cell)
no longer fires; each evasion (torch.ops, a name built from pieces, a reference captured at cell time, another
scikit-learn entry point, an alias in another cell) is a violation or a line marked NEEDS REVIEW; the solution
notebooks of every assignment are clean."""
import functools

import nbformat
import pytest

from tests.wrong_notebooks import solution, with_definition

from course_utils.layout import course_root
from course_utils.grader import execute
from course_utils.grader.cases import Call, Suite, load_suite
from course_utils.grader.rules import Rule, judge_notebook, loops_in, review_comments, rule_violations
from course_utils.grader.score import score, totals

NAMES = sorted(p.stem for p in (course_root() / "cases").glob("a[0-9][0-9]_*.py"))


@functools.lru_cache(maxsize=None)
def suite(name: str) -> Suite:
    return load_suite(course_root() / "cases" / f"{name}.py")


def judge(name: str, *definitions: str, cells: tuple[str, ...] = (), ran: list[bool] | None = None,
          nb: nbformat.NotebookNode | None = None):
    """Findings and notes of the rules on the solution of `name` (or `nb`) with `definitions` replaced and `cells`
    added at the end (as cells the student added)."""
    nb = solution(name) if nb is None else nb
    for source in definitions:
        nb = with_definition(nb, source)
    code = [(c.source, c.metadata.get("nbgrader", {})) for c in nb.cells if c.cell_type == "code"]
    code += [(source, {}) for source in cells]
    return judge_notebook(suite(name).rules, code, suite(name).targets(), ran)


def verdict(name: str, part: str, *definitions: str, cells: tuple[str, ...] = ()) -> str:
    """"violation", "review" or "" for one part."""
    found, _ = judge(name, *definitions, cells=cells)
    return "" if part not in found else "review" if found[part].review else "violation"


# ---------------------------------------------------------------- the solutions

def release(name: str) -> nbformat.NotebookNode:
    return nbformat.read(course_root() / "assignments" / name / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", NAMES)
def test_solution_breaks_no_rule_and_needs_no_review(name):
    found, notes = judge(name)
    assert found == {} and notes == []


@pytest.mark.parametrize("name", NAMES)
def test_blank_release_breaks_no_rule_and_needs_no_review(name):
    assert judge(name, nb=release(name)) == ({}, [])


def test_every_assignment_with_rules_names_what_its_parts_call():
    ruled = {n: suite(n) for n in NAMES if suite(n).rules}
    assert set(ruled) == {"a01_autoencoders", "a05_distillation", "a07_vit", "a09_detr"}
    for name, s in ruled.items():
        for rule in s.rules:
            assert s.targets()[rule.grade_id], (name, rule.grade_id)
            assert all(e.count(".") or e in ("sklearn", "torchvision", "torchmetrics", "torcheval", "functorch")
                       for e in rule.forbid), (name, rule.forbid)          # dotted API names or module prefixes


# ---------------------------------------------------------------- false positives of the word rule, gone

A07_DOCSTRING = '''
def multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, heads, allowed=None):
    """Multi-head attention of a Vision Transformer (no nn.MultiheadAttention, no Transformer layers)."""
    B, n, D = x.shape
    d = D // heads
    q, k, v = (x @ w_qkv.T + b_qkv).reshape(B, n, 3, heads, d).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-2, -1) / math.sqrt(d)
    if allowed is not None:
        logits = logits.masked_fill(~(allowed[:, None] if allowed.dim() == 3 else allowed), float("-inf"))
    attn = logits.softmax(dim=-1)
    return (attn @ v).transpose(1, 2).reshape(B, n, D) @ w_out.T + b_out, attn
'''
A05_DOCSTRING = '''
def softmax_t(logits, T):
    """Temperature softmax: exp(u) / sum(exp(u)) for u = logits / T, shifted (no F.softmax, no torch.softmax)."""
    u = logits / T
    u = u - u.max(dim=-1, keepdim=True).values
    e = torch.exp(u)
    return e / e.sum(dim=-1, keepdim=True)
'''
A05_FUNC_PARAMETER = '''
def finite_difference_grad(f, z, eps=1e-6):
    return _central(f, z, eps)
'''
A05_FUNC_HELPER = '''
def _central(func, z, eps):
    grad = torch.zeros_like(z)
    flat = grad.view(-1)
    for k in range(z.numel()):
        step = torch.zeros_like(z).view(-1)
        step[k] = eps
        step = step.view_as(z)
        flat[k] = (float(func(z + step)) - float(func(z - step))) / (2 * eps)
    return grad
'''
A01_SCRATCH_AUC = '''
from sklearn.metrics import roc_auc_score
s, y = np.array([0.1, 0.4, 0.8, 0.4, 0.7]), np.array([0, 0, 0, 1, 1])
print(roc_auc(s, y), roc_auc_score(y, s))           # my AUC against scikit-learn's
'''
A05_WORDS = '''
def softmax_t(logits, T):
    # not F.softmax(logits / T): the shifted exponentials
    notes = {"softmax": f"{'torch.softmax'} is not used", "log_softmax": None}
    softmax = lambda u: torch.exp(u - torch.logsumexp(u, dim=-1, keepdim=True))   # my own softmax
    return softmax(logits / T)
'''
A05_OWN_HELPER_NAMED_SOFTMAX = '''
def softmax(u):
    return torch.exp(u - torch.logsumexp(u, dim=-1, keepdim=True))
'''
A05_CALLS_OWN_SOFTMAX = '''
def softmax_t(logits, T):
    return softmax(logits / T)
'''
A05_OWN_METHOD_NAMED_SOFTMAX = '''
class Tempered:
    def __init__(self, T):
        self.T = T

    def softmax(self, u):
        u = u / self.T
        return torch.exp(u - torch.logsumexp(u, dim=-1, keepdim=True))
'''
A05_CALLS_OWN_METHOD = '''
def softmax_t(logits, T):
    return Tempered(T).softmax(logits)
'''


@pytest.mark.parametrize("name, part, definitions, cells", [
    ("a07_vit", "test_attention", (A07_DOCSTRING,), ()),
    ("a05_distillation", "test_softmax_t", (A05_DOCSTRING,), ()),
    ("a05_distillation", "test_gradient", (A05_FUNC_PARAMETER,), (A05_FUNC_HELPER,)),
    ("a01_autoencoders", "test_roc_auc", (), (A01_SCRATCH_AUC,)),
    ("a05_distillation", "test_softmax_t", (A05_WORDS,), ()),
    ("a05_distillation", "test_softmax_t", (A05_CALLS_OWN_SOFTMAX,), (A05_OWN_HELPER_NAMED_SOFTMAX,)),
    ("a05_distillation", "test_softmax_t", (A05_CALLS_OWN_METHOD,), (A05_OWN_METHOD_NAMED_SOFTMAX,)),
    ("a07_vit", "test_attention", (), ("layer = nn.TransformerEncoderLayer(64, 4)  # a scratch comparison",)),
], ids=["a07 docstring Vision Transformer", "a05 docstring Temperature softmax", "a05 helper parameter func",
        "a01 scratch cell with roc_auc_score", "a05 names in a comment, an f-string, a dict key, a local",
        "a05 own helper named softmax", "a05 own method named softmax", "a07 scratch Transformer layer"])
def test_correct_code_is_not_refused(name, part, definitions, cells):
    found, notes = judge(name, *definitions, cells=cells)
    assert part not in found, found[part].text
    assert notes == []


def test_a_definition_replaced_in_a_later_cell_that_ran_no_longer_counts():
    forbidden = "def softmax_t(logits, T):\n    return torch.softmax(logits / T, dim=-1)\n"
    nb = solution("a05_distillation")
    code = [(c.source, c.metadata.get("nbgrader", {})) for c in nb.cells if c.cell_type == "code"]
    cells = code + [(forbidden, {}), (A05_DOCSTRING, {})]
    rules, targets = suite("a05_distillation").rules, suite("a05_distillation").targets()
    assert judge_notebook(rules, cells, targets)[0] == {}
    ran = [True] * (len(cells) - 1) + [False]               # the clean one raised before its end: both may hold
    assert not judge_notebook(rules, cells, targets, ran)[0]["test_softmax_t"].review


# ---------------------------------------------------------------- evasions: a violation, or a line to review

def unpool(body: str) -> str:
    return f"def max_unpool(values, indices, output_size):\n    return {body}\n"


def auc(body: str) -> str:
    return f"def roc_auc(scores, labels):\n    return float({body})\n"


EVASIONS = {   # name: (assignment, part, replaced definitions, added cells, "violation" | "review")
    "F.max_unpool2d": ("a01_autoencoders", "test_max_unpool", (unpool("F.max_unpool2d(values, indices, 2)"),), (),
                       "violation"),
    "torch.nn.functional.max_unpool2d": ("a01_autoencoders", "test_max_unpool",
                                         (unpool("torch.nn.functional.max_unpool2d(values, indices, 2)"),), (),
                                         "violation"),
    "from torch.nn import functional as G": ("a01_autoencoders", "test_max_unpool", (unpool("G.max_unpool2d(values, indices, 2)"),),
                                             ("from torch.nn import functional as G",), "violation"),
    "nn.MaxUnpool2d through torch.nn.modules": ("a01_autoencoders", "test_max_unpool",
                                                (unpool("torch.nn.modules.pooling.MaxUnpool2d(2)(values, indices)"),),
                                                (), "violation"),
    "torch.ops.aten.max_unpool2d": ("a01_autoencoders", "test_max_unpool",
                                    (unpool("torch.ops.aten.max_unpool2d(values, indices, list(output_size))"),), (),
                                    "violation"),
    "torch.ops.aten under another name": ("a01_autoencoders", "test_max_unpool", (unpool("ops.max_unpool2d(values, indices, output_size)"),),
                                          ("ops = torch.ops.aten",), "violation"),
    "torch.ops of some other op": ("a01_autoencoders", "test_max_unpool",
                                   (unpool("torch.ops.aten.index_put(values, (indices,), values)"),), (), "review"),
    '"max_" + "unpool2d"': ("a01_autoencoders", "test_max_unpool",
                            (unpool('getattr(F, "max_" + "unpool2d")(values, indices, 2)'),), (), "violation"),
    "getattr with a computed name": ("a01_autoencoders", "test_max_unpool",
                                     (unpool('getattr(F, "max_" + values.__class__.__name__[:0] + "unpool2d")(values, indices, 2)'),),
                                     (), "review"),
    "the C function captured at cell time": ("a01_autoencoders", "test_max_unpool", (unpool("_unpool(values, indices, output_size)"),),
                                             ("_unpool = torch._C._nn.max_unpool2d",), "violation"),
    "an alias captured in another cell": ("a01_autoencoders", "test_max_unpool", (unpool("u(values, indices, 2)"),),
                                          ("u = F.max_unpool2d",), "violation"),
    "a lambda alias": ("a01_autoencoders", "test_max_unpool", (unpool("u(values, indices)"),),
                       ("u = lambda v, i: F.max_unpool2d(v, i, 2)",), "violation"),
    "a helper method on a class": ("a01_autoencoders", "test_max_unpool", (unpool("Unpooler().run(values, indices)"),),
                                   ("class Unpooler:\n    def run(self, v, i):\n        return self.layer()(v, i)\n\n"
                                    "    def layer(self):\n        return nn.MaxUnpool2d(2)",), "violation"),
    "from torch.nn.functional import *": ("a01_autoencoders", "test_max_unpool", (unpool("max_unpool2d(values, indices, 2)"),),
                                          ("from torch.nn.functional import *",), "violation"),
    "F.__dict__": ("a01_autoencoders", "test_max_unpool", (unpool('F.__dict__["max_unpool2d"](values, indices, 2)'),), (),
                   "review"),
    "vars(F)": ("a01_autoencoders", "test_max_unpool", (unpool('vars(F)["max_unpool2d"](values, indices, 2)'),), (), "review"),
    "globals()": ("a01_autoencoders", "test_max_unpool", (unpool('globals()["u"](values, indices, 2)'),),
                  ("u = F.relu",), "review"),
    "eval": ("a01_autoencoders", "test_max_unpool", (unpool('eval("F.max_" + "unpool2d")(values, indices, 2)'),), (),
             "review"),
    "exec in a scratch cell": ("a01_autoencoders", "test_max_unpool", (), ('exec("x = 1")',), "review"),
    "%run of a file": ("a01_autoencoders", "test_max_unpool", (), ("%run helpers.py",), "review"),
    "sys.modules": ("a01_autoencoders", "test_max_unpool",
                    (unpool('sys.modules["torch.nn.functional"].max_unpool2d(values, indices, 2)'),), ("import sys",),
                    "review"),
    "importlib with a literal": ("a01_autoencoders", "test_max_unpool",
                                 (unpool('importlib.import_module("torch.nn." + "functional").max_unpool2d(values, indices, 2)'),),
                                 ("import importlib",), "violation"),
    "__import__ with a computed name": ("a01_autoencoders", "test_max_unpool",
                                        (unpool('__import__(values.__module__ + ".nn.functional", fromlist=["x"]).max_unpool2d(values, indices, 2)'),),
                                        (), "review"),
    "a module the notebook wrote": ("a01_autoencoders", "test_max_unpool", (unpool("helper.unpool(values, indices)"),),
                                    ("%%writefile helper.py\nimport torch.nn.functional as F\n"
                                     "def unpool(v, i):\n    return F.max_unpool2d(v, i, 2)\n", "import helper"), "review"),
    "a %%capture cell": ("a01_autoencoders", "test_max_unpool", (),
                         ("%%capture\n" + unpool("F.max_unpool2d(values, indices, 2)"),), "violation"),
    "a patched library attribute": ("a01_autoencoders", "test_max_unpool", (unpool("F.my_unpool(values, indices, 2)"),),
                                    ("F.my_unpool = F.max_unpool2d",), "violation"),
    "a global set by another function": ("a01_autoencoders", "test_max_unpool", (unpool("U(values, indices, 2)"),),
                                         ("def setup():\n    global U\n    U = F.max_unpool2d\n\nsetup()",), "violation"),
    "a module returned by a helper": ("a01_autoencoders", "test_max_unpool", (unpool("lib().max_unpool2d(values, indices, 2)"),),
                                      ("def lib():\n    return F",), "review"),
    "roc_auc_score renamed": ("a01_autoencoders", "test_roc_auc", (auc("r(labels, scores)"),),
                              ("from sklearn.metrics import roc_auc_score as r",), "violation"),
    "import sklearn.metrics as m": ("a01_autoencoders", "test_roc_auc", (auc("m.roc_auc_score(labels, scores)"),),
                                    ("import sklearn.metrics as m",), "violation"),
    "confusion_matrix_at_thresholds": ("a01_autoencoders", "test_roc_auc", (auc("area(labels, scores)"),),
                                       ("from sklearn.metrics import confusion_matrix_at_thresholds\n\n"
                                        "def area(y, s):\n    tn, fp, fn, tp, _ = confusion_matrix_at_thresholds(y, s)\n"
                                        "    tpr, fpr = tp / tp[-1], fp / fp[-1]\n"
                                        "    return np.trapezoid(np.r_[0, tpr], np.r_[0, fpr])",), "violation"),
    "scikit-learn's private _ranking": ("a01_autoencoders", "test_roc_auc",
                                        (auc("_ranking._binary_roc_auc_score(labels, scores)"),),
                                        ("from sklearn.metrics import _ranking",), "violation"),
    "sklearn through importlib in another cell": ("a01_autoencoders", "test_roc_auc", (auc("_area(labels, scores)"),),
                                                  ('import importlib\n_area = getattr(importlib.import_module("sk" + '
                                                   '"learn.metrics"), "roc_auc" + "_score")',), "violation"),
    "mannwhitneyu": ("a01_autoencoders", "test_roc_auc", (auc("mannwhitneyu(scores[labels == 1], scores[labels == 0])[0]"),),
                     ("from scipy.stats import mannwhitneyu",), "violation"),
    "F.softmax renamed in the function": ("a05_distillation", "test_softmax_t",
                                          ("def softmax_t(logits, T):\n    from torch.nn.functional import softmax as sm\n"
                                           "    return sm(logits / T, dim=-1)\n",), (), "violation"),
    "Tensor.softmax": ("a05_distillation", "test_softmax_t", ("def softmax_t(logits, T):\n    return (logits / T).softmax(-1)\n",),
                       (), "violation"),
    "log_softmax in a helper of another cell": ("a05_distillation", "test_softmax_t",
                                                ("def softmax_t(logits, T):\n    return _probabilities(logits / T)\n",),
                                                ("def _probabilities(u):\n    return F.log_softmax(u, dim=-1).exp()",),
                                                "violation"),
    "torch.softmax by a built name": ("a05_distillation", "test_softmax_t",
                                      ('def softmax_t(logits, T):\n    return getattr(torch, "soft" + "max")(logits / T, dim=-1)\n',),
                                      (), "violation"),
    "softmax through a star import": ("a05_distillation", "test_softmax_t",
                                      ("def softmax_t(logits, T):\n    return softmax(logits / T, -1)\n",),
                                      ("from torch import *",), "violation"),
    "autograd": ("a05_distillation", "test_gradient",
                 ("def soft_ce_grad(z, v, T):\n    leaf = z.detach().clone().requires_grad_()\n"
                  "    (g,) = torch.autograd.grad(soft_ce(leaf, v, T).sum(), leaf)\n    return g\n",), (), "violation"),
    "autograd by built names": ("a05_distillation", "test_gradient",
                                ('def soft_ce_grad(z, v, T):\n    leaf = getattr(z.detach().clone(), "requires_" + "grad_")()\n'
                                 '    engine = getattr(torch, "auto" + "grad")\n'
                                 '    return getattr(engine, "gr" + "ad")(soft_ce(leaf, v, T).sum(), leaf)[0]\n',), (),
                                "violation"),
    "backward in a helper": ("a05_distillation", "test_gradient", ("def soft_ce_grad(z, v, T):\n    return _g(z, v, T)\n",),
                             ("def _g(z, v, T):\n    z = z.clone().requires_grad_(True)\n    soft_ce(z, v, T).sum().backward()\n"
                              "    return z.grad",), "violation"),
    "MultiheadAttention renamed": ("a07_vit", "test_attention",
                                   ("def multi_head_attention(x, *a, allowed=None):\n"
                                    "    from torch.nn import MultiheadAttention as Att\n    return Att(8, 2)(x, x, x)\n",), (),
                                   "violation"),
    "sdpa by getattr": ("a07_vit", "test_attention",
                        ("def multi_head_attention(x, *a, allowed=None):\n"
                         "    sdpa = getattr(F, 'scaled_dot_product_attention')\n    return sdpa(x, x, x), None\n",), (),
                        "violation"),
    "a Transformer layer in a helper class": ("a07_vit", "test_attention",
                                              ("def multi_head_attention(x, *a, allowed=None):\n    return Block()(x), None\n",),
                                              ("class Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                                               "        self.layer = nn.TransformerEncoderLayer(8, 2)\n\n"
                                               "    def forward(self, x):\n        return self.layer(x)",), "violation"),
    "torch.ops sdpa": ("a07_vit", "test_attention",
                       ("def multi_head_attention(x, *a, allowed=None):\n"
                        "    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(x, x, x)[0], None\n",), (),
                       "violation"),
    "torchvision": ("a09_detr", "q1_test",
                    ("def generalized_box_iou(a, b, eps=1e-7):\n    from torchvision.ops import generalized_box_iou as g, box_iou\n"
                     "    return g(a, b), box_iou(a, b)\n",), (), "violation"),
}


@pytest.mark.parametrize("case", list(EVASIONS))
def test_evasion_is_refused_or_marked_for_review(case):
    name, part, definitions, cells, want = EVASIONS[case]
    found, notes = judge(name, *definitions, cells=cells)
    assert part in found, f"{case}: passed silently"
    assert ("review" if found[part].review else "violation") == want, found[part].text
    assert notes == []
    others = {gid for gid, f in found.items() if not f.review}
    assert others <= {part}, f"{case}: other parts refused: {others}"


def test_a_violation_names_the_api_and_the_line():
    found, _ = judge("a01_autoencoders", unpool("G.max_unpool2d(values, indices, 2)"),
                     cells=("from torch.nn import functional as G",))
    text = found["test_max_unpool"].text
    assert text.startswith("Part 2 asks for max_unpool without")
    assert "`torch.nn.functional.max_unpool2d`" in text and "`max_unpool`" in text and "G.max_unpool2d(values" in text


def test_a_review_names_the_line_why_and_the_answer_cell():
    found, _ = judge("a01_autoencoders", unpool('F.__dict__["max_unpool2d"](values, indices, 2)'))
    f = found["test_max_unpool"]
    assert f.review and f.line == 'return F.__dict__["max_unpool2d"](values, indices, 2)'
    assert f.text == f"NEEDS REVIEW: `{f.line}` ({f.why})" and "`max_unpool`, line 2 of its cell" in f.why
    assert f.answers == ("max_unpool",)                       # the answer cell that defines the graded function
    assert review_comments(found) == {"max_unpool": f.text}


def test_a_cell_that_does_not_parse_is_reported_and_skipped():
    found, notes = judge("a01_autoencoders", cells=("def broken(:\n    pass",))
    assert found == {} and len(notes) == 1 and "does not parse" in notes[0]


# ---------------------------------------------------------------- the source-level API and loops

def test_rule_violations_on_sources_with_the_release_as_context():
    rules = [Rule("t", ("torch.nn.functional.max_unpool2d",), "No unpool.", targets=("f",))]
    context = ["import torch.nn.functional as F\n"]
    assert not rule_violations(rules, ["def f(x):\n    return F.max_unpool2d(x, x, 2)\n"], context=context)["t"].review
    assert rule_violations(rules, ["def f(x):\n    return F.relu(x)\n"], context=context) == {}
    # without the release, F is unknown: an attribute named like the API cannot be judged
    assert rule_violations(rules, ["def f(x):\n    return F.max_unpool2d(x, x, 2)\n"])["t"].review
    # with no graded function named, every function of the student's is judged
    assert "t" in rule_violations([Rule("t", rules[0].forbid, "No unpool.")],
                                  ["def g(x):\n    return F.max_unpool2d(x, x, 2)\n"], context=context)


def test_loops_follow_the_call_graph_not_words():
    own_map = "def map(f, xs):\n    return xs\n\ndef giou(a, b):\n    return map(abs, a)\n"
    assert loops_in(["giou"], [own_map]) == []                        # the student's own `map`
    assert loops_in(["giou"], ["def giou(a, b):\n    return list(map(abs, a))\n"]) == ["a call of `map` in `giou`, line 2"]
    assert loops_in(["giou"], ["import numpy as np\n", "def giou(a, b):\n    return np.vectorize(abs)(a)\n"])
    local = "def helper(a):\n    return [x for x in a]\n\ndef giou(a, b):\n    helper = a\n    return helper\n"
    assert loops_in(["giou"], [local]) == []                          # a local named like a helper reaches nothing


# ---------------------------------------------------------------- scoring and the gradebook comment

def test_a_review_keeps_the_points_and_marks_the_results():
    s = Suite("demo")

    @s.case("t")
    def add(rng):
        return Call("add", 2, 3, expect=5)

    def ask(request):
        from course_utils.grader.cases import Answer
        return Answer(True, out=5)

    f = rule_violations([Rule("t", ("operator.add",), "No operator.", targets=("add",))],
                        ["def add(a, b):\n    return eval('a + b')\n"])["t"]
    assert f.review
    reviewed = score(s, ask, {"t": 2.0}, 1, {"t": f})
    assert totals(reviewed) == {"t": 2.0} and reviewed[0].review == f.text and reviewed[0].passed
    refused = score(s, ask, {"t": 2.0}, 1, {"t": "No operator."})
    assert totals(refused) == {"t": 0.0} and refused[0].review == "" and refused[0].message == "No operator."


def test_the_answer_cell_comment_shows_the_review_to_the_ta():
    nb, blank = solution("a01_autoencoders"), release("a01_autoencoders")
    points = execute.cell_points(blank)
    grades, comments = execute._grades(nb, blank, {}, points, {"max_unpool": "NEEDS REVIEW: `x` (why)"})
    assert comments["max_unpool"] == "NEEDS REVIEW: `x` (why)"
    assert all(c is None for gid, c in comments.items() if gid != "max_unpool")


# ---------------------------------------------------------------- the second line: entry points switched off at run time

def test_switch_off_covers_internal_entry_points_and_references_captured_earlier():
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import confusion_matrix_at_thresholds, roc_auc_score, roc_curve

    from course_utils.grader.probe import _disabled

    names = suite("a01_autoencoders").cases[0].build.__globals__
    x = torch.randn(1, 1, 4, 4)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    y, s = np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.3, 0.4])
    captured = {"F.max_unpool2d": lambda: F.max_unpool2d(pooled, idx, 2),
                "torch._C._nn.max_unpool2d": (lambda c: lambda: c(pooled, idx, [4, 4]))(torch._C._nn.max_unpool2d),
                "torch.ops.aten.max_unpool2d.default": (lambda c: lambda: c(pooled, idx, [4, 4]))(
                    torch.ops.aten.max_unpool2d.default),
                "torch.ops.aten.max_unpool2d": lambda: torch.ops.aten.max_unpool2d(pooled, idx, [4, 4]),
                "nn.MaxUnpool2d": lambda: torch.nn.MaxUnpool2d(2)(pooled, idx)}
    sklearn_calls = {"roc_auc_score": lambda: roc_auc_score(y, s), "roc_curve": lambda: roc_curve(y, s),
                     "confusion_matrix_at_thresholds": lambda: confusion_matrix_at_thresholds(y, s)}
    with _disabled(list(names["UNPOOL_OFF"]) + list(names["AUC_OFF"])):
        for what, call in {**captured, **sklearn_calls}.items():
            with pytest.raises(RuntimeError, match="must be written without"):
                call()
                pytest.fail(f"{what} ran")
    assert captured["torch.ops.aten.max_unpool2d.default"]().shape == (1, 1, 4, 4)      # all back after the call
    assert captured["F.max_unpool2d"]().shape == (1, 1, 4, 4) and roc_auc_score(y, s) == 0.75
    a05 = suite("a05_distillation").cases[0].build.__globals__
    soft = (lambda c: lambda: c(x, -1))(torch.softmax)
    leaf = torch.randn(3, requires_grad=True)
    grad = (lambda g: lambda: g((2 * leaf).sum(), leaf))(torch.autograd.grad)
    with _disabled(list(a05["NO_SOFTMAX"]) + list(a05["NO_AUTOGRAD"])):
        for call in (soft, lambda: x.softmax(-1), grad, lambda: (2 * leaf).sum().backward()):
            with pytest.raises(RuntimeError, match="must be written without"):
                call()
    assert torch.allclose(soft().sum(-1), torch.ones(1, 1, 4)) and grad()[0].tolist() == [2.0, 2.0, 2.0]


def test_code_too_deep_for_the_analysis_marks_the_parts_for_review_without_stopping():
    deep = "def max_unpool(values, indices, output_size):\n    return values" + " + values" * 900 + "\n"
    found, notes = judge("a01_autoencoders", cells=(deep,))          # Python parses it; a recursive walk cannot
    assert set(found) == {"test_max_unpool", "test_roc_auc"} and all(f.review for f in found.values())
    assert "could not analyse" in found["test_max_unpool"].why and notes == []
    found, notes = judge("a01_autoencoders", cells=(deep.rstrip("\n") + " + values" * 20000 + "\n",))
    assert found == {} and "does not parse" in notes[0]                # nor can the kernel: it defines nothing
