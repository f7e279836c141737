"""The course website: README pages and finished tqdm bars (fast), then the built site in headless Chromium (slow)."""
import functools
import http.server
import re
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urlparse
from urllib.request import urlopen

import nbformat
import pytest

from course_utils import bootstrap, site
from course_utils.bootstrap import edition_url

ROOT = Path(__file__).resolve().parent.parent
LECTURE_01 = ROOT / "lectures" / "01_autoencoders.ipynb"
SHOTS = ROOT / "build" / "site-screenshots"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,860", "--hide-scrollbars",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # any non-local fetch fails loudly
RAW_MATH = re.compile(r"\$\$?[^$\s][^$]*\$")


# ---- fast: pages from README, widget outputs
def test_readme_section_stops_at_the_next_heading_of_its_level_and_skips_code_fences():
    text = "# T\n## A\na1\n```bash\n## not a heading\n```\n### A.1\nsub\n## B\nb\n"
    assert site.readme_section(text, "## A") == "a1\n```bash\n## not a heading\n```\n### A.1\nsub\n"
    assert site.readme_section(text, "### A.1") == "sub\n"
    assert site.replace_section(text, "### A.1", "### A.1\nsee elsewhere") == \
        "# T\n## A\na1\n```bash\n## not a heading\n```\n### A.1\nsee elsewhere\n\n## B\nb\n"
    with pytest.raises(SystemExit, match="no section starting with '## C'"):
        site.readme_section(text, "## C")


def test_headings_are_promoted_and_names_become_links():
    assert site.promote_headings("### x\n```\n### y\n```\n#### z\n", 1) == "## x\n```\n### y\n```\n### z\n"
    assert site.link_names("| `01_ae` | `a01` | `other` |", {"01_ae": "lectures/01_ae.ipynb", "a01": "x.ipynb"}) == \
        "| [`01_ae`](lectures/01_ae.ipynb) | [`a01`](x.ipynb) | `other` |"


def test_every_readme_page_the_site_needs_is_there():
    readme = (ROOT / "README.md").read_text()
    for heading, _ in [("## Syllabus", ""), ("## For students", ""), *site.README_PAGES.values()]:
        assert site.readme_section(readme, heading).strip()


def test_display_math_gets_a_blank_line_before_it_outside_code():
    src = "by $q$:\n$$\na\n+ b\n$$\nnext $$x$$ inline\n```\n$$\n```\n\n$$\ny\n$$"
    assert site.separate_display_math(src) == \
        "by $q$:\n\n$$\na\n+ b\n$$\nnext $$x$$ inline\n```\n$$\n```\n\n$$\ny\n$$"


def test_lecture_01_widget_bars_show_their_final_state_not_zero_percent():
    nb = nbformat.read(LECTURE_01, as_version=4)
    views = [o for c in nb.cells for o in c.get("outputs", []) if site.WIDGET_VIEW in o.get("data", {})]
    assert len(views) >= 10 and all("  0%" in "".join(o["data"]["text/plain"]) for o in views)
    assert site.replace_widgets(nb) == len(views)
    assert "widgets" not in nb.metadata
    texts = [o["data"]["text/plain"] for c in nb.cells for o in c.get("outputs", [])
             if o.get("output_type") == "display_data" and "|" in o["data"].get("text/plain", "")]
    bars = [t for t in texts if "it/s" in t or "s/it" in t]
    assert len(bars) == len(views), texts
    for text in bars:
        assert re.search(r": 100%\|\u2588{10}\| (\d+)/\1\b", text), text
        assert " 0%" not in text and "loss=" in text, text
    assert not any(site.WIDGET_VIEW in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_an_interrupted_bar_and_an_unknown_widget():
    def model(name, **state):
        return {"model_name": name, "state": state}
    state = {"box": model("HBoxModel", children=["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]),
             "l": model("HTMLModel", value="train:\u2007 40%"), "p": model("FloatProgressModel", value=2.0, max=5.0,
                                                                          bar_style="danger"),
             "r": model("HTMLModel", value="2/5\u2007[00:01&lt;00:02, loss=1.5]"), "s": model("IntSliderModel")}
    assert site.widget_text("box", state) == "train:  40%|\u2588\u2588\u2588\u2588      | 2/5 [00:01<00:02, loss=1.5]" \
                                             " (stopped early)"
    assert site.widget_text("s", state) is None and site.widget_text("missing", state) is None


def test_staged_notebooks_point_their_bootstrap_cell_at_the_launch_repository(tmp_path):
    docs = site.stage(ROOT, tmp_path / "src", "https://example.org/edition")
    for doc in [*docs["lectures"], *docs["assignments"]]:
        first = bootstrap.first_code_cell(nbformat.read(tmp_path / "src" / f"{doc}.ipynb", as_version=4))
        assert first.source == bootstrap.cell_source("https://example.org/edition"), doc
    assert docs["guides"] == list(site.README_PAGES)  # the full course: the TA pages too


# ---- slow: build, serve, browse
@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    """The site built from the checkout into a temp folder, with its build time."""
    out = tmp_path_factory.mktemp("site") / "site"
    seconds, warnings = site.build(ROOT, out)
    print(f"site built in {seconds:.1f} s, {warnings} Sphinx warnings")
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no access log on stderr
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # the browser cancels requests when it navigates on
        pass


@pytest.fixture(scope="module")
def served(built_site):
    """Base URL of a local HTTP server over the built site."""
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(built_site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian Chromium driven through chromedriver (installed by scripts/setup-browser)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is missing: run scripts/setup-browser (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


PAGE_FACTS = """
const done = arguments[arguments.length - 1];
const ready = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
Promise.all([ready, ...[...document.images].map(i => i.decode().catch(() => null))]).then(() => {
  const article = document.querySelector('article') || document.body;
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script, style, .output').forEach(e => e.remove());
  done({
    math: document.querySelectorAll('.math').length,
    typeset: document.querySelectorAll('mjx-container').length,
    mathjax: !!(window.MathJax && MathJax.startup && MathJax.startup.document),
    prose: clone.textContent,
    text: article.innerText,
    broken_images: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    images: document.images.length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    resources: performance.getEntriesByType('resource').map(e => e.name),
  });
});
"""


def _visit(driver, url: str) -> dict:
    """Load url and return what the page shows (after MathJax and images), with its console errors."""
    driver.get(url)
    facts = driver.execute_async_script(PAGE_FACTS)
    facts["errors"] = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return facts


@pytest.mark.slow
def test_every_page_in_a_real_browser(built_site, served, browser):
    start = time.perf_counter()
    pages, queue, links = {}, deque([served + "index.html"]), set()
    while queue:
        url = queue.popleft()
        if url in pages:
            continue
        pages[url] = facts = _visit(browser, url)
        for link in facts["links"]:
            if link.startswith(served):
                links.add(link)
                target = urldefrag(link).url
                if target.endswith(".html") and target not in pages:
                    queue.append(target)
    names = {urlparse(u).path.lstrip("/") for u in pages}
    lectures = sorted(f"lectures/{p.stem}.html" for p in (ROOT / "lectures").glob("*.ipynb"))
    assignments = sorted(f"{p.relative_to(ROOT).with_suffix('.html')}" for p in (ROOT / "assignments").glob("*/*.ipynb"))
    assert {"index.html", "results.html", "ta_guide.html", "grading.html", *lectures, *assignments} <= names

    for url, facts in pages.items():
        page = urlparse(url).path.lstrip("/")
        assert facts["errors"] == [], f"{page}: console errors {facts['errors']}"
        assert facts["broken_images"] == [], f"{page}: images not loaded {facts['broken_images']}"
        assert all(r.startswith(served) for r in facts["resources"]), \
            f"{page}: fetched from outside the site: {[r for r in facts['resources'] if not r.startswith(served)]}"
        assert facts["mathjax"] or not facts["math"], f"{page}: MathJax did not start"
        assert facts["typeset"] >= facts["math"], f"{page}: {facts['math']} math nodes, {facts['typeset']} typeset"
        raw = RAW_MATH.findall(facts["prose"])
        assert not raw, f"{page}: math left as raw TeX: {raw[:5]}"
        if page in lectures or page in assignments:
            source = page.removesuffix(".html") + ".ipynb"
            for launch in (f"https://colab.research.google.com/github/{edition_url().split('github.com/')[1]}/blob/main/{source}",
                           f"https://mybinder.org/v2/gh/{edition_url().split('github.com/')[1]}/main?urlpath=lab/tree/{source}"):
                assert launch in facts["links"], f"{page}: no launch link {launch}"
    for page in lectures:
        facts = pages[served + page]
        assert facts["typeset"] > 0 and facts["images"] > 0, f"{page}: no typeset math or no figures"
    lecture_01 = pages[served + "lectures/01_autoencoders.html"]
    assert " 0%" not in lecture_01["text"] and lecture_01["text"].count("100%|") >= 10

    ids = {urldefrag(u).url: set(f["ids"]) for u, f in pages.items()}
    for link in sorted(links):
        target, fragment = urldefrag(link)
        if target in ids:
            assert not fragment or fragment in ids[target], f"broken anchor: {link}"
        else:
            with urlopen(target) as response:  # a file the site links to (image, notebook download, search)
                assert response.status == 200, f"broken link: {link}"

    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, page in (("landing", "index.html"), ("lecture_01", "lectures/01_autoencoders.html")):
        _visit(browser, served + page)
        assert browser.save_screenshot(str(SHOTS / f"{name}.png"))
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
    print(f"{len(pages)} pages, {len(links)} internal links checked in {time.perf_counter() - start:.1f} s")
