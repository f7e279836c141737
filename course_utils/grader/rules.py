""""Without X" rules judge the code that runs: the graded functions and what they call, read with `ast`.

A rule (`Suite.rule`) forbids dotted API names or module prefixes for one part, e.g. `torch.nn.functional.
max_unpool2d`, `torch.nn.MaxUnpool2d`, `sklearn`. It is judged on the part's graded functions (the `target`s of
its Calls, or `targets=` given to the rule) and on everything of the student's they reach: module-level
functions, classes and assignments named in their code, transitively (a call graph over the student's cells;
the release's locked cells count for imports only). Every name use is resolved to a dotted path through the
student's imports and assignments, in any cell: `G.max_unpool2d` after `from torch.nn import functional as G`,
`getattr(F, "max_" + "unpool2d")`, `u(...)` after `u = F.max_unpool2d` in another cell, `x.softmax()` for a
`torch.Tensor.*` entry. Comments, docstrings, strings, the student's own names and cells that no graded function
uses never count.

What cannot be resolved statically in that code (`eval`, `exec`, `getattr` with a computed name, `globals()`,
`importlib`, `torch.ops`, `sys.modules`, private library internals, a module the notebook wrote) neither passes
silently nor zeroes: the part is marked NEEDS REVIEW with the offending line, keeps the points its cases give,
and the TA reads the line in the formgrader. So is every ruled part of a notebook that can rebind names at run
time (`exec` or `globals()` anywhere, `%run`). A broken rule scores the part 0 with the rule's text.
`loops_in` (the `no_loops_in` of a rule) walks the same call graph for Python loops.
"""
from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import sys
import types
from dataclasses import dataclass, field

# ---------------------------------------------------------------- what a rule says, what it finds


@dataclass
class Rule:
    """A part must be written without some library API; judged on the code its graded functions run."""

    grade_id: str
    forbid: tuple[str, ...]
    why: str
    no_loops_in: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()          # the graded functions; () = those of the part's cases (Suite.targets)


class Finding(str):
    """What the rules found for one part: a violation (the part scores 0) or a line to review (points kept).

    The text itself (a str, so it reads where a message is expected): for a violation the rule's text and what was
    used where; for a review "NEEDS REVIEW: `<line>` (<why>)"."""

    grade_id: str
    review: bool
    line: str                  # the offending line, as written
    why: str                   # for a review: why the grader cannot judge the line, and where it is
    answers: tuple[str, ...]   # grade_ids of the answer cells defining the graded functions (judge_notebook)

    def __new__(cls, grade_id: str, review: bool, text: str, line: str = "", why: str = "",
                answers: tuple[str, ...] = ()):
        self = super().__new__(cls, text)
        self.grade_id, self.review, self.line, self.why, self.answers = grade_id, review, line, why, answers
        return self

    @property
    def text(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Finding({self.grade_id!r}, {'review' if self.review else 'violation'}, {self.text!r})"


# ---------------------------------------------------------------- fixed tables

# using these in the code a rule judges cannot be checked statically: needs review
DYNAMIC = {
    "builtins.eval": "eval runs code the grader cannot read",
    "builtins.exec": "exec runs code the grader cannot read",
    "builtins.compile": "compile builds code the grader cannot read",
    "builtins.__import__": "__import__ with a computed name",
    "builtins.globals": "globals() looks names up at run time",
    "builtins.vars": "vars() looks names up at run time",
    "builtins.locals": "locals() looks names up at run time",
    "importlib": "importlib with a computed name",
    "sys.modules": "sys.modules looks modules up at run time",
    "sys._getframe": "frame introspection",
    "inspect": "introspection finds functions at run time",
    "gc": "gc finds objects at run time",
    "operator.attrgetter": "attrgetter looks attributes up at run time",
    "operator.methodcaller": "methodcaller looks methods up at run time",
    "torch.ops": "torch.ops reaches library kernels by name",
    "torch._ops": "torch._ops reaches library kernels",
    "torch.library": "torch.library registers kernels at run time",
    "ctypes": "ctypes calls native code",
    "runpy": "runpy runs code the grader cannot read",
    "pickle": "pickle builds objects at run time",
    "marshal": "marshal builds code at run time",
    "dill": "dill builds objects at run time",
    "cloudpickle": "cloudpickle builds objects at run time",
    "types.FunctionType": "builds a function at run time",
    "types.CodeType": "builds code at run time",
    "code": "the code module runs code the grader cannot read",
    "codeop": "codeop compiles code at run time",
    "pkgutil": "pkgutil finds modules at run time",
    "IPython.get_ipython": "get_ipython() reaches the notebook's namespace",
    "__main__": "reads the notebook's namespace at run time",
}
# anywhere in the student's code, these can rebind the graded functions themselves: every ruled part needs review
WRITERS = ("builtins.eval", "builtins.exec", "builtins.compile", "builtins.globals", "builtins.vars", "builtins.locals",
           "sys.modules", "IPython.get_ipython", "__main__", "runpy", "importlib.reload")
INTROSPECTION = {"__dict__", "__globals__", "__builtins__", "__code__", "__closure__", "__wrapped__",
                 "__getattribute__", "__getattr__", "__subclasses__", "__bases__", "__base__", "__mro__", "__self__",
                 "__func__", "__loader__", "__spec__", "__import__", "__reduce__", "__reduce_ex__", "__defaults__",
                 "__kwdefaults__"}
LOOPS = {ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop",
         ast.ListComp: "a list comprehension", ast.SetComp: "a set comprehension", ast.DictComp: "a dict comprehension",
         ast.GeneratorExp: "a generator expression"}
LOOP_CALLS = ("map", "filter", "vectorize", "frompyfunc", "apply_", "starmap")
# IPython magics (after IPython's own transform): those whose text runs as Python here, and harmless ones
PYTHON_MAGICS = {"time", "timeit", "prun", "debug", "capture"}
SAFE_MAGICS = {"matplotlib", "config", "pip", "conda", "cd", "pwd", "ls", "who", "whos", "who_ls", "history",
               "precision", "pprint", "xmode", "reset", "alias", "sx", "sc", "system", "writefile", "bash", "sh",
               "script", "html", "HTML", "javascript", "js", "latex", "markdown", "svg", "python", "python3", "env",
               "set_env", "save"}

_VALUE = ("value",)          # an untraced value: a local, a parameter, a call's result
_SELF = ("self",)            # the first parameter of a method of the student's class
_RELEASE = ("release",)      # something a locked release cell defines (trusted, not read)


# ---------------------------------------------------------------- the student's program

@dataclass
class Block:
    """The code of one cell (or of a `%%capture` / `%time` body in it), parsed."""

    cell: int
    tree: ast.Module
    lines: list[str]
    student: bool
    ran: bool = True
    sub: int = 0


@dataclass
class Binding:
    """One module-level binding of a name: what binds it, where, and whether it surely replaces the earlier ones."""

    kind: str                  # import | def | assign | global | release
    block: Block
    node: ast.AST              # the statement (or def) that binds it
    order: tuple
    final: bool
    path: str = ""             # for an import


@dataclass
class Scope:
    kind: str                                          # module | function | class | comp
    names: set = field(default_factory=set)
    imports: dict = field(default_factory=dict)        # local name -> dotted paths imported
    self_name: str | None = None


@dataclass
class Hit:
    kind: str                  # violation | review | loop
    text: str                  # what: "`torch.nn.functional.max_unpool2d`", or why for a review, or the loop
    block: Block
    node: ast.AST
    unit: str
    root: str
    key: str = ""              # for a review of a dynamic lookup: the dotted path used

    def where(self) -> str:
        here = f"`{self.unit}`" if self.unit else "top-level code"
        return here + ("" if self.unit == self.root else f" (reached from `{self.root}`)")

    def line(self) -> str:
        n = getattr(self.node, "lineno", 0)
        return self.block.lines[n - 1].strip() if 0 < n <= len(self.block.lines) else ""


class Program:
    """The module-level bindings of a notebook's cells (the student's and the release's), for name resolution."""

    def __init__(self, cells: list[tuple[str, bool, bool]]):
        """cells: (source, written by the student, ran to its end) in the order they run."""
        self.blocks: list[Block] = []
        self.unparsed: list[tuple[int, str]] = []
        self.bindings: dict[str, list[Binding]] = {}
        self.stars: list[str] = []
        self.patches: dict[str, list[tuple[Block, ast.AST]]] = {}
        self.attrs: set[str] = set()                   # attribute names the student's classes and objects define
        self.safe_calls: set[int] = set()              # ids of harmless magic calls
        for i, (source, student, ran) in enumerate(cells):
            self._parse(i, source, student, ran, 0)
        for block in self.blocks:
            self._bind(block)
        for block in self.blocks:
            if block.student:
                self._scan_student(block)

    # ---- parsing (IPython syntax as the kernel reads it)

    def _parse(self, cell: int, source: str, student: bool, ran: bool, depth: int) -> None:
        text = _ipython(source)
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:   # the kernel cannot run it either
            why = f"{type(e).__name__} line {getattr(e, 'lineno', '?')}: {getattr(e, 'msg', e)}"
            self.unparsed.append((cell, why))
            return
        block = Block(cell, tree, text.splitlines(), student, ran and depth == 0, depth)
        self.blocks.append(block)
        for node in ast.walk(tree):
            magic = _magic(node)
            if magic is None:
                continue
            kind, name, body = magic
            if kind in ("run_line_magic", "run_cell_magic") and name in PYTHON_MAGICS and depth < 3:
                self.safe_calls.add(id(node))
                if isinstance(body, str):
                    self._parse(cell, body, student, ran, depth + 1)
            elif kind in ("system", "getoutput") or name in SAFE_MAGICS:
                self.safe_calls.add(id(node))

    # ---- module-level bindings

    def _bind(self, block: Block) -> None:
        kind_of = "release" if not block.student else None

        def add(name: str, kind: str, node: ast.AST, order: tuple, final: bool, path: str = "") -> None:
            if kind_of and kind != "import":
                kind = kind_of
            final = final and block.ran and block.sub == 0
            self.bindings.setdefault(name, []).append(Binding(kind, block, node, (block.cell, block.sub) + order, final,
                                                              path))

        def visit(stmts: list[ast.stmt], top: bool, prefix: tuple) -> None:
            for k, s in enumerate(stmts):
                order = prefix + (k,)
                if isinstance(s, (ast.Import, ast.ImportFrom)):
                    for alias in s.names:
                        if alias.name == "*":
                            self.stars.append(_from_module(s) or "")
                            continue
                        name, path = _import_binding(s, alias)
                        add(name, "import", s, order, top, path)
                elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    add(s.name, "def", s, order, top)
                else:
                    for name in _stored_names(s):
                        add(name, "assign", s, order, top and not isinstance(s, (ast.For, ast.AsyncFor, ast.While)))
                    for body in _bodies(s):
                        visit(body, False, order)

        visit(block.tree.body, True, ())

    def _scan_student(self, block: Block) -> None:
        """Globals bound inside functions, attribute names of the student's objects, patches of library attributes."""
        for top in block.tree.body:
            for node in ast.walk(top):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    declared = {n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names}
                    for name in declared & set(_stored_names_deep(node)):
                        self.bindings.setdefault(name, []).append(
                            Binding("global", block, top, (block.cell, block.sub, 10**9), False))
                if isinstance(node, ast.ClassDef):
                    for s in node.body:
                        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                            self.attrs.add(s.name)
                        else:
                            self.attrs.update(_stored_names(s))
                targets = []
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                    targets.append((node.value, node.attr))
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                        and node.func.id in ("setattr", "delattr") and len(node.args) >= 2 \
                        and (name := _literal(node.args[1])) is not None:
                    targets.append((node.args[0], name))
                for base, attr in targets:
                    meanings = self.meaning(base, [Scope("module")])
                    paths = [m[1] for m in meanings if m[0] == "path"]
                    for p in paths:
                        self.patches.setdefault(f"{p}.{attr}", []).append((block, top))
                    if not paths:
                        self.attrs.add(attr)

    # ---- resolution

    def effective(self, name: str) -> list[Binding]:
        """The bindings of a module-level name that may hold when the graded functions run (in cell order,
        from the last one that surely ran and replaced the earlier ones)."""
        found = sorted(self.bindings.get(name, []), key=lambda b: b.order)
        last = max((i for i, b in enumerate(found) if b.final), default=0)
        return found[last:]

    def meaning(self, expr: ast.AST, scopes: list[Scope], seen: frozenset = frozenset()) -> set[tuple]:
        """What an expression may refer to: ("path", dotted) for library API, ("unit", name) for the student's
        module-level code, _SELF, _RELEASE, _VALUE or ("unknown", name). Pure: it reports nothing."""
        if isinstance(expr, ast.Name):
            return self.name_meaning(expr.id, scopes, seen)
        if isinstance(expr, ast.Attribute):
            return {_extend(m, expr.attr) for m in self.meaning(expr.value, scopes, seen)}
        if isinstance(expr, ast.Call):
            special = self.call_meaning(expr, scopes, seen)
            if special is not None:
                return special
            classes = [m[1] for m in self.meaning(expr.func, scopes, seen) if m[0] == "unit"]
            if classes and all(isinstance(b.node, ast.ClassDef) for c in classes for b in self.effective(c)):
                return {("inst", c) for c in classes}          # an instance of the student's own class
        return {_VALUE}

    def call_meaning(self, call: ast.Call, scopes: list[Scope], seen: frozenset) -> set[tuple] | None:
        """getattr with a literal name, importlib.import_module / __import__ of a literal: what they return."""
        funcs = {m[1] for m in self.meaning(call.func, scopes, seen) if m[0] == "path"}
        if "builtins.getattr" in funcs and len(call.args) >= 2 and (name := _literal(call.args[1])) is not None:
            return {_extend(m, name) for m in self.meaning(call.args[0], scopes, seen)}
        if funcs & {"importlib.import_module", "builtins.__import__"} and call.args \
                and (name := _literal(call.args[0])) is not None and not name.startswith("."):
            fromlist = len(call.args) >= 4 or any(k.arg == "fromlist" for k in call.keywords)
            if "builtins.__import__" in funcs and not fromlist:
                name = name.split(".")[0]                      # __import__("a.b") returns a
            return {("path", name)}
        return None

    def name_meaning(self, name: str, scopes: list[Scope], seen: frozenset = frozenset()) -> set[tuple]:
        innermost = True
        for scope in reversed(scopes):
            if scope.kind == "module":
                break
            if scope.kind == "class" and not innermost:
                continue
            innermost = False
            if name in scope.names:
                if name in scope.imports:
                    return {("path", p) for p in scope.imports[name]}
                return {_SELF} if name == scope.self_name else {_VALUE}
        return self.global_meaning(name, seen)

    def global_meaning(self, name: str, seen: frozenset = frozenset()) -> set[tuple]:
        if name in seen:
            return {("unit", name)}
        out: set[tuple] = set()
        for b in self.effective(name):
            if b.kind == "import":
                out.add(("path", b.path))
            elif b.kind in ("def", "global"):
                out.add(("unit", name))
            elif b.kind in ("assign", "release"):
                if b.kind == "assign":
                    out.add(("unit", name))
                value = _assigned_value(b.node, name)
                if value is not None and isinstance(value, (ast.Name, ast.Attribute, ast.Call)):
                    out |= {m for m in self.meaning(value, [Scope("module")], seen | {name}) if m != _VALUE}
                if b.kind == "release" and not any(m[0] == "path" for m in out):
                    out.add(_RELEASE)
        if out:
            return out
        if name == "get_ipython":
            return {("path", "IPython.get_ipython")}
        if name == "__builtins__":
            return {("path", "builtins")}
        stars = {("path", f"{m or '__relative__'}.{name}") for m in self.stars if not m or _may_have(m, name)}
        if hasattr(builtins, name):
            stars.add(("path", f"builtins.{name}"))
        return stars or {("unknown", name)}

    def units(self, name: str) -> list[tuple[Block, ast.AST]]:
        """The student's module-level code a name reaches: defs, assignments, functions declaring it global."""
        out, ids = [], set()
        for b in self.effective(name):
            if b.kind in ("def", "assign", "global") and id(b.node) not in ids:
                ids.add(id(b.node))
                out.append((b.block, b.node))
        return out

    def class_attrs(self, name: str, seen: frozenset = frozenset()) -> set[str]:
        """Attributes the student's class `name` (and its bases of the student's) defines: methods, class
        attributes, `self.x = ...` in its methods."""
        out: set[str] = set()
        for b in self.effective(name):
            if not isinstance(b.node, ast.ClassDef) or name in seen:
                continue
            for s in b.node.body:
                out.update([s.name] if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                           else _stored_names(s))
            for n in ast.walk(b.node):
                if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name) \
                        and n.value.id in ("self", "cls"):
                    out.add(n.attr)
            for base in b.node.bases:
                if isinstance(base, ast.Name):
                    out |= self.class_attrs(base.id, seen | {name})
        return out

    def defined(self) -> list[str]:
        """Names of the student's module-level functions and classes."""
        return [n for n, bs in self.bindings.items() if any(b.kind == "def" for b in self.effective(n))]


# ---------------------------------------------------------------- walking the code a rule judges

class Walker(ast.NodeVisitor):
    """Walks units of the student's code (from the roots, through everything they reach) and records hits."""

    def __init__(self, program: Program, forbid: tuple[str, ...], loops: bool = False):
        self.p, self.forbid, self.loops = program, forbid, loops
        self.live = {}
        for entry in forbid:
            _load(entry)
            obj = _live(entry)
            if obj is not _MISSING:
                self.live[id(obj)] = entry
        # entries that are attributes of a class (torch.Tensor.softmax): matched on values of unknown type too
        self.methods = {e.rsplit(".", 1)[1]: e for e in forbid
                        if "." in e and isinstance(_live(e.rsplit(".", 1)[0]), type)}
        self.lasts: dict[str, str] = {}
        for e in forbid:
            if e.rsplit(".", 1)[-1] not in self.methods:
                self.lasts.setdefault(e.rsplit(".", 1)[-1], e)
        self.hits: list[Hit] = []
        self.marks: set[tuple] = set()
        self.todo: list[tuple[str, str]] = []
        self.seen: set[str] = set()
        self.seen_patches: set[int] = set()
        self.block: Block | None = None
        self.scopes: list[Scope] = []
        self.unit = self.root = ""

    # ---- driving

    def run(self, roots: list[str]) -> list[Hit]:
        self.todo = [(r, r) for r in roots]
        while self.todo:
            name, root = self.todo.pop(0)
            if name in self.seen:
                continue
            self.seen.add(name)
            for block, node in self.p.units(name):
                self.walk_unit(block, node, name, root)
        return self.hits

    def walk_unit(self, block: Block, node: ast.AST, unit: str, root: str) -> None:
        saved = (self.block, self.scopes, self.unit, self.root)
        self.block, self.scopes, self.unit, self.root = block, [Scope("module")], unit, root
        self.visit(node)
        self.block, self.scopes, self.unit, self.root = saved

    def hit(self, kind: str, text: str, node: ast.AST, key: str = "") -> None:
        mark = (kind, text, id(self.block), getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        if mark not in self.marks:
            self.marks.add(mark)
            self.hits.append(Hit(kind, text, self.block, node, self.unit, self.root, key))

    def reach(self, name: str) -> None:
        if name not in self.seen:
            self.todo.append((name, self.root))

    # ---- scopes

    def _function(self, node, body: list) -> None:
        a = node.args
        for d in a.defaults + [d for d in a.kw_defaults if d is not None]:
            self.visit(d)
        if not isinstance(node, ast.Lambda):
            for d in node.decorator_list:
                self.visit(d)
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
                if arg is not None and arg.annotation is not None:
                    self.visit(arg.annotation)
            if node.returns is not None:
                self.visit(node.returns)
        params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x is not None]
        scope = Scope("function", set(params))
        if self.scopes[-1].kind == "class" and (a.posonlyargs + a.args) and not _is_static(node):
            scope.self_name = (a.posonlyargs + a.args)[0].arg
        declared = set()
        for s in body:
            for n in _walk_scope(s):
                if isinstance(n, (ast.Global, ast.Nonlocal)):
                    declared.update(n.names)
        for s in body:
            scope.names.update(_stored_names(s, deep=True))
            for n in _walk_scope(s):
                if isinstance(n, (ast.Import, ast.ImportFrom)):
                    for alias in n.names:
                        if alias.name != "*":
                            name, path = _import_binding(n, alias)
                            scope.imports.setdefault(name, set()).add(path)
                            scope.names.add(name)
        scope.names -= declared
        self.scopes.append(scope)
        for s in body:
            self.visit(s)
        self.scopes.pop()

    def visit_FunctionDef(self, node):
        self._function(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._function(node, [node.body])

    def visit_ClassDef(self, node):
        for e in node.bases + [k.value for k in node.keywords] + node.decorator_list:
            self.visit(e)
        scope = Scope("class")
        for s in node.body:
            scope.names.update(_stored_names(s, deep=True))
        self.scopes.append(scope)
        for s in node.body:
            self.visit(s)
        self.scopes.pop()

    def _comprehension(self, node, parts: list):
        scope = Scope("comp", {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)})
        self.visit(node.generators[0].iter)
        self.scopes.append(scope)
        for g in node.generators:
            if g is not node.generators[0]:
                self.visit(g.iter)
            for cond in g.ifs:
                self.visit(cond)
        for part in parts:
            self.visit(part)
        self.scopes.pop()
        self.loop(node)

    def visit_ListComp(self, node):
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node):
        self._comprehension(node, [node.key, node.value])

    # ---- loops

    def loop(self, node):
        if self.loops and type(node) in LOOPS:
            self.hit("loop", LOOPS[type(node)], node)

    def visit_For(self, node):
        self.loop(node)
        self.generic_visit(node)

    visit_AsyncFor = visit_While = visit_For

    # ---- name uses

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self.check(self.p.name_meaning(node.id, self.scopes), node, node.id)

    def visit_Attribute(self, node):
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        chain.reverse()
        load = isinstance(node.ctx, ast.Load)
        meanings = self.p.meaning(base, self.scopes)
        for k, attr in enumerate(chain):
            meanings = {_SELF if m[0] == "inst" and attr in self.p.class_attrs(m[1]) else
                        _VALUE if m[0] == "inst" else m for m in meanings}
            untraced, own = _untraced(meanings)
            if untraced:
                self.value_attr(attr, own, node, load or k < len(chain) - 1)
            meanings = {_extend(m, attr) for m in meanings}
        if load:
            self.check(meanings, node, ast.unparse(node))
        else:
            paths = [m[1] for m in meanings if m[0] == "path"]
            if paths:
                self.hit("review", f"changes `{paths[0]}` at run time", node)
        self.visit(base)

    def value_attr(self, attr: str, own: bool, node, load: bool) -> None:
        """An attribute of a value the grader cannot trace (a tensor, a parameter, a call's result)."""
        if attr in INTROSPECTION:
            self.hit("review", f"`{attr}` reaches objects the grader cannot trace", node)
        if not load:
            return
        if attr in self.methods and not own:
            if attr in self.p.attrs:
                self.hit("review", f"`.{attr}` may be `{self.methods[attr]}` or your own attribute", node)
            else:
                self.hit("violation", f"`{self.methods[attr]}` (as `.{attr}`)", node)
        elif attr in self.lasts and attr not in self.p.attrs and not own:
            self.hit("review", f"`.{attr}` on a value the grader cannot trace may be `{self.lasts[attr]}`", node)
        if self.loops and attr in LOOP_CALLS and not own:
            self.hit("loop", f"a call of `{attr}`", node)
        for key, units in self.p.patches.items():
            if key.endswith("." + attr):
                self.patched(units)

    def check(self, meanings: set[tuple], node, shown: str) -> None:
        for m in meanings:
            if m[0] == "unit":
                self.reach(m[1])
            elif m[0] == "path":
                self.check_path(m[1], node, shown)

    def check_path(self, path: str, node, shown: str) -> None:
        entry = next((e for e in self.forbid if _under(path, e)), None)
        if entry is None:
            obj = _live(path)
            if obj is not _MISSING:
                entry = self.live.get(id(obj))
                if entry is None and isinstance(obj, types.ModuleType):
                    entry = next((e for e in self.forbid if _under(obj.__name__, e)), None)
        parts = path.split(".")
        if entry is not None:
            self.hit("violation", f"`{path}`" + (f" (as `{shown}`)" if shown.split("(")[0] != path else ""), node)
            return
        key = next((k for k in DYNAMIC if _under(path, k)), None)
        if key is not None:
            self.hit("review", DYNAMIC[key], node, path)
        elif not _library(parts[0]):
            self.hit("review", f"`{parts[0]}` is no installed library (a module the notebook wrote?)", node)
        elif any(p in INTROSPECTION for p in parts[1:]):
            self.hit("review", f"`{path}` reaches objects the grader cannot trace", node)
        elif any(p.startswith("_") and not p.startswith("__") for p in parts[1:]):
            self.hit("review", f"`{path}` is a private part of a library", node)
        if self.loops and parts[-1] in LOOP_CALLS:
            self.hit("loop", f"a call of `{parts[-1]}`", node)
        for key, units in self.p.patches.items():
            if _under(path, key):                      # a library attribute the student's code sets
                self.patched(units)

    def patched(self, units) -> None:
        for block, top in units:
            if id(top) not in self.seen_patches:
                self.seen_patches.add(id(top))
                self.walk_unit(block, top, _unit_name(top), self.root)

    def visit_Call(self, node):
        if id(node) in self.p.safe_calls:
            return
        funcs = {m[1] for m in self.p.meaning(node.func, self.scopes) if m[0] == "path"}
        special = self.p.call_meaning(node, self.scopes, frozenset())
        if special is not None and funcs & {"importlib.import_module", "builtins.__import__"}:
            self.check(special, node, ast.unparse(node))
            for a in node.args[1:] + [k.value for k in node.keywords]:
                self.visit(a)
            return
        if "builtins.getattr" in funcs and len(node.args) >= 2:
            if special is not None:
                self.check(special, node, ast.unparse(node))
                base = {_VALUE if m[0] == "inst" else m for m in self.p.meaning(node.args[0], self.scopes)}
                untraced, own = _untraced(base)
                if untraced:
                    self.value_attr(_literal(node.args[1]), own, node, True)
            elif self.p.meaning(node.args[0], self.scopes) != {_SELF}:
                self.hit("review", "getattr with a name computed at run time", node)
        if funcs & {"builtins.setattr", "builtins.delattr"} and node.args:
            if any(m[0] == "path" for m in self.p.meaning(node.args[0], self.scopes)):
                self.hit("review", "setattr changes a library at run time", node)
        self.generic_visit(node)

    def visit_Subscript(self, node):
        if isinstance(node.ctx, ast.Load):
            for m in self.p.meaning(node.value, self.scopes):
                if m[0] == "path" and isinstance(_live(m[1]), types.ModuleType):
                    self.hit("review", f"looks `{m[1]}` up by key", node)
        self.generic_visit(node)

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name != "*":
                path = alias.name if isinstance(node, ast.Import) else _import_binding(node, alias)[1]
                self.check_path(path, node, path)

    def visit_ImportFrom(self, node):
        if node.level:
            self.hit("review", "a relative import of a module the notebook wrote", node)
            return
        self.visit_Import(node)


def _untraced(meanings: set[tuple]) -> tuple[bool, bool]:
    """(whether some meaning is a value the grader cannot trace, whether all of those are the method's own self)."""
    untraced = {m for m in meanings if m in (_VALUE, _SELF, _RELEASE) or m[0] == "unknown"}
    return bool(untraced), untraced == {_SELF}


# ---------------------------------------------------------------- judging rules

def rule_violations(rules: list[Rule], student_sources: list[str], targets: dict[str, tuple] | None = None,
                    context: list[str] | tuple = (), ran: list[bool] | None = None) -> dict[str, Finding]:
    """grade_id -> Finding (a violation, or a line to review) for every part whose rule the code breaks or
    cannot be judged on. `context`: the release's locked cells (read for imports only), run first."""
    cells = [(s, False, True) for s in context] + [(s, True, True if ran is None else ran[i])
                                                   for i, s in enumerate(student_sources)]
    return _guarded(rules, lambda: _judge(Program(cells), rules, targets or {}, answers=None))


def judge_notebook(rules: list[Rule], cells: list[tuple[str, dict]], targets: dict[str, tuple] | None = None,
                   ran: list[bool] | None = None) -> tuple[dict[str, Finding], list[str]]:
    """The rules on an assembled notebook: `cells` are its code cells as (source, nbgrader metadata), in order;
    `ran[i]` whether cell i ran to its end. Returns the findings (with the answer cells to comment on) and notes
    (cells that do not parse: the kernel cannot run them either, so the rules skip them)."""
    if not rules:
        return {}, []
    answers, last = [], None
    for _, meta in cells:
        if meta.get("solution") and meta.get("grade_id"):
            last = meta["grade_id"]
        answers.append(last)
    notes: list[str] = []

    def run() -> dict[str, Finding]:
        program = Program([(src, not meta.get("locked"), True if ran is None else ran[i])
                           for i, (src, meta) in enumerate(cells)])
        notes.extend(f"rules: cell {cells[i][1].get('grade_id') or i} does not parse, the rules skip it ({why})"
                     for i, why in program.unparsed if not cells[i][1].get("locked"))
        return _judge(program, rules, targets or {}, answers)

    return _guarded(rules, run, tuple(dict.fromkeys(a for a in answers if a))), notes


def _guarded(rules: list[Rule], judge, answers: tuple[str, ...] = ()) -> dict[str, Finding]:
    """judge(), or, when the code defeats the analysis itself (nesting too deep, a bug here), every ruled part
    marked for review: the grading goes on."""
    try:
        return judge()
    except Exception as e:  # noqa: BLE001 - the student's code must not stop the grading
        why = f"the grader could not analyse this notebook ({type(e).__name__})"
        return {r.grade_id: Finding(r.grade_id, True, f"NEEDS REVIEW: the whole notebook ({why})", "", why, answers)
                for r in rules}


def review_comments(findings: dict[str, Finding]) -> dict[str, str]:
    """answer-cell grade_id -> the NEEDS REVIEW lines of the parts it answers (for the gradebook's auto comment)."""
    out: dict[str, list[str]] = {}
    for f in findings.values():
        if f.review:
            for gid in f.answers:
                out.setdefault(gid, []).append(f.text)
    return {gid: "\n".join(texts) for gid, texts in out.items()}


def _judge(program: Program, rules: list[Rule], targets: dict[str, tuple], answers: list | None) -> dict[str, Finding]:
    writers = _writers(program)
    out: dict[str, Finding] = {}
    for rule in rules:
        roots = list(rule.targets or targets.get(rule.grade_id) or ()) or program.defined()
        roots = list(dict.fromkeys(roots + list(rule.no_loops_in)))
        hits = Walker(program, rule.forbid).run(roots)
        if rule.no_loops_in:
            hits += [h for h in Walker(program, (), loops=True).run(list(rule.no_loops_in)) if h.kind == "loop"]
        finding = None
        violations = [h for h in hits if h.kind == "violation"]
        loops = [h for h in hits if h.kind == "loop"]
        reviews = _first_per_line([h for h in hits if h.kind == "review"] + writers)
        if violations:
            h = violations[0]
            finding = Finding(rule.grade_id, False, f"{rule.why} Your code uses {h.text} in {h.where()} (line "
                                                    f"{h.node.lineno} of its cell: `{h.line()}`).", h.line())
        elif loops:
            h = loops[0]
            finding = Finding(rule.grade_id, False, f"{rule.why} Your code has {h.text} in {h.where()} (line "
                                                    f"{h.node.lineno} of its cell).", h.line())
        elif reviews:
            h = reviews[0]
            more = f"; {len(reviews) - 1} more such line(s)" if len(reviews) > 1 else ""
            why = f"{h.text}, in {h.where()}, line {h.node.lineno} of its cell{more}"
            finding = Finding(rule.grade_id, True, f"NEEDS REVIEW: `{h.line()}` ({why})", h.line(), why)
        if finding is None:
            continue
        if answers is not None:
            cells = [b.cell for r in roots for b, _ in program.units(r) if b.student]
            cells = cells or ([h.block.cell] if (violations or loops or reviews) else [])
            finding.answers = tuple(dict.fromkeys(answers[c] for c in cells if answers[c]))
        previous = out.get(rule.grade_id)
        if previous is None or (previous.review and not finding.review):
            out[rule.grade_id] = finding
    return out


def _first_per_line(hits: list[Hit]) -> list[Hit]:
    """One hit per offending line (the first found)."""
    out: dict[tuple, Hit] = {}
    for h in hits:
        out.setdefault((id(h.block), h.node.lineno), h)
    return list(out.values())


def _writers(program: Program) -> list[Hit]:
    """Code anywhere in the student's cells that can rebind names at run time (exec, globals(), %run, ...)."""
    walker = Walker(program, ())
    for block in program.blocks:
        if block.student:
            for top in block.tree.body:
                walker.walk_unit(block, top, _unit_name(top), _unit_name(top))
    found = []
    for h in walker.hits:
        if h.kind == "review" and h.key and any(_under(h.key, key) for key in WRITERS):
            h.text = f"{h.text}: the notebook can rebind the graded functions at run time"
            found.append(h)
    return found


def loops_in(names: tuple[str, ...] | list[str], student_sources: list[str],
             context: list[str] | tuple = ()) -> list[str]:
    """Python loops inside the named functions and every function of the student's they reach (calls,
    module-level aliases and wrappers `f = partial(g)`, functions passed as arguments), e.g.
    ["a for loop in `helper` (reached from `giou`), line 3"]."""
    program = Program([(s, False, True) for s in context] + [(s, True, True) for s in student_sources])
    hits = Walker(program, (), loops=True).run(list(names))
    return [f"{h.text} in {h.where()}, line {h.node.lineno}" for h in hits if h.kind == "loop"]


# ---------------------------------------------------------------- small helpers

_MISSING = object()


@functools.lru_cache(maxsize=4096)
def _live(path: str):
    """The grader's own object at a dotted path, reached without importing anything new (_MISSING if none)."""
    parts = path.split(".")
    obj = sys.modules.get(parts[0], _MISSING)
    if obj is _MISSING:
        return _MISSING
    for k, part in enumerate(parts[1:], 1):
        name = ".".join(parts[:k + 1])
        if name in sys.modules:
            obj = sys.modules[name]
            continue
        try:
            obj = getattr(obj, part)
        except Exception:  # noqa: BLE001 - a lazy library attribute may raise anything
            return _MISSING
    return obj


@functools.lru_cache(maxsize=256)
def _load(entry: str) -> None:
    """Import the library module a rule's entry names (the rule's author chose it), so `_live` can see it."""
    parts = entry.split(".")
    if not _library(parts[0]):
        return
    for k in range(len(parts), 0, -1):
        try:
            importlib.import_module(".".join(parts[:k]))
            _live.cache_clear()
            return
        except Exception:  # noqa: BLE001 - not a module (an attribute), or not installed
            continue


@functools.lru_cache(maxsize=1024)
def _library(top: str) -> bool:
    """Whether a top-level module is the standard library or an installed package (not a file the notebook wrote)."""
    if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()) or top in sys.modules:
        return True
    try:
        import importlib.metadata

        if top in importlib.metadata.packages_distributions():
            return True
        return importlib.util.find_spec(top) is not None
    except Exception:  # noqa: BLE001
        return False


def _may_have(module: str, name: str) -> bool:
    obj = _live(module)
    return obj is _MISSING or hasattr(obj, name)


def _under(path: str, entry: str) -> bool:
    return path == entry or path.startswith(entry + ".")


def _extend(meaning: tuple, attr: str) -> tuple:
    if meaning[0] == "path":
        return ("path", f"{meaning[1]}.{attr}")
    if meaning[0] in ("unit", "release"):
        return _VALUE if meaning[0] == "unit" else _RELEASE
    return _VALUE


def _literal(node: ast.AST) -> str | None:
    """The string a constant expression folds to ("max_" + "unpool2d", f"{'a'}b"), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.FormattedValue):
                if v.conversion != -1 or v.format_spec is not None or (s := _literal(v.value)) is None:
                    return None
                parts.append(s)
            elif (s := _literal(v)) is not None:
                parts.append(s)
            else:
                return None
        return "".join(parts)
    return None


def _from_module(node: ast.ImportFrom) -> str | None:
    return None if node.level else node.module


def _import_binding(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> tuple[str, str]:
    """(the name an import binds, the dotted path it refers to)."""
    if isinstance(node, ast.Import):
        return (alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0], alias.name.split(".")[0])
    module = ("." * node.level) + (node.module or "")
    return alias.asname or alias.name, f"{module}.{alias.name}" if not node.level else f"__relative__.{alias.name}"


def _walk_scope(node: ast.AST):
    """ast.walk, not entering nested functions, lambdas, classes or comprehensions (their own scopes)."""
    yield node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return
    todo = list(ast.iter_child_nodes(node))
    while todo:
        n = todo.pop()
        yield n
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
                          ast.GeneratorExp, ast.DictComp)):
            continue
        for child in ast.iter_child_nodes(n):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield child                    # its name is bound here; decorators and defaults are not walked
            elif isinstance(child, (ast.Lambda, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
                for sub in ast.walk(child):    # a walrus in a comprehension binds in the enclosing scope
                    if isinstance(sub, ast.NamedExpr):
                        yield sub.target
            else:
                todo.append(child)


def _stored_names(stmt: ast.AST, deep: bool = False) -> list[str]:
    """Names a statement binds in its scope (targets, walrus, with/except names, nested def/class names with
    deep=True; imports are handled apart). Compound statements: their own targets only unless deep."""
    out = []
    nodes = _walk_scope(stmt) if deep else _header_nodes(stmt)
    for n in nodes:
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.append(n.id)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.append(n.name)
        elif deep and n is not stmt and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(n.name)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            out.append(n.name)
    if deep and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        out.append(stmt.name)
    return out


def _stored_names_deep(func: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]


def _header_nodes(stmt: ast.AST):
    """The nodes of a statement outside the bodies of its compound parts (and outside nested scopes)."""
    bodies = {id(s) for body in _bodies(stmt) for s in body}
    todo = [stmt]
    while todo:
        n = todo.pop()
        yield n
        for child in ast.iter_child_nodes(n):
            if id(child) in bodies:
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp,
                                  ast.SetComp, ast.GeneratorExp, ast.DictComp)):
                for sub in ast.walk(child):
                    if isinstance(sub, ast.NamedExpr):
                        yield sub.target
                continue
            todo.append(child)


def _bodies(stmt: ast.AST) -> list[list[ast.stmt]]:
    """The statement lists inside a compound statement (if/for/while/try/with/match)."""
    out = []
    for name in ("body", "orelse", "finalbody"):
        body = getattr(stmt, name, None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt) \
                and not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(body)
    for h in getattr(stmt, "handlers", []):
        out.append(h.body)
    for c in getattr(stmt, "cases", []):
        out.append(c.body)
    return out


def _assigned_value(stmt: ast.AST, name: str) -> ast.AST | None:
    """The value a simple `name = value` (or `name: T = value`) statement gives name, else None."""
    if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name:
        return stmt.value
    return None


def _is_static(node) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in getattr(node, "decorator_list", []))


def _unit_name(node: ast.AST) -> str:
    """What a module-level statement is called in messages: the name it defines or binds ("" for none)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    names = _stored_names(node)
    return names[0] if names else ""


@functools.lru_cache(maxsize=1)
def _transformer():
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return None
    return TransformerManager()


def _ipython(source: str) -> str:
    """The cell as IPython runs it (magics and shell escapes become get_ipython() calls)."""
    manager = _transformer()
    if manager is None:
        return source
    try:
        return manager.transform_cell(source)
    except Exception:  # noqa: BLE001 - IPython cannot transform it: parse it as written
        return source


def _magic(node: ast.AST) -> tuple[str, str, str | None] | None:
    """(method, magic name, the text it runs) for a get_ipython().<method>(...) call, else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython"):
        return None
    method = node.func.attr
    args = [_literal(a) for a in node.args]
    if method == "run_line_magic" and len(args) >= 2:
        return method, args[0] or "", args[1]
    if method == "run_cell_magic" and len(args) >= 3:
        return method, args[0] or "", args[2]
    if method in ("system", "getoutput"):
        return method, method, None
    return method, "", None
