"""Sphinx configuration of the course website; `course site` stages the pages next to this file and builds them."""
import os

if "COURSE_SITE_REPO_URL" not in os.environ:
    raise SystemExit("site/conf.py: build the site with `course site` (it stages the pages and sets the repository URL)")

project = "Generative models and vision transformers"
author = "the course authors"
copyright = "the course authors, MIT license"

extensions = ["myst_nb", "sphinx.ext.githubpages"]  # githubpages: the .nojekyll file GitHub Pages needs
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]

# Notebooks are shown with their committed outputs and never executed here.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # widget views are replaced by their final text when staged: no widget JavaScript (CDN)
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True  # `$$...$$` inside a paragraph, as Jupyter renders it
myst_heading_anchors = 3

# MathJax 3 from the course's own copy (staged into _static/mathjax), never from a CDN.
mathjax_path = "mathjax/tex-chtml.js"
html_static_path = ["_static"]
html_css_files = ["course.css"]

repository_url = os.environ["COURSE_SITE_REPO_URL"].removesuffix(".git").rstrip("/")
html_theme = "sphinx_book_theme"
html_title = "GenViT course"
html_last_updated_fmt = None
html_favicon = "_static/favicon.svg"  # else the browser asks for /favicon.ico and logs a 404
html_context = {"default_mode": "light"}  # pydata-sphinx-theme logs a console error without a mode
html_theme_options = {
    "repository_url": repository_url,
    "repository_branch": os.environ.get("COURSE_SITE_BRANCH", "main"),
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com", "binderhub_url": "https://mybinder.org",
                       "notebook_interface": "jupyterlab"},
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
