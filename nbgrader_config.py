"""nbgrader configuration for the course; `course` passes it explicitly, so it works from any directory."""
import importlib.util
import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "genvit"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "grading", "gradebook.db")

# nbgrader's exchange (release/fetch/submit between accounts on one server) lives in the course folder and is
# created on demand: nbgrader requires it to exist, and the default /usr/local/share/nbgrader/exchange makes
# the formgrader warn on every page and the server log "Unwritable directory". Assignments travel through the
# LMS here (`course collect`), so it normally stays empty. git-ignored.
c.Exchange.root = os.path.join(HERE, "exchange")
try:
    os.makedirs(c.Exchange.root, exist_ok=True)
except OSError:
    pass  # a read-only checkout: nbgrader reports the missing exchange itself

# Math without internet: nbgrader's formgrade and feedback templates load MathJax from a CDN. The folder below
# overrides nbconvert's mathjax macro to use the copy jupyter-server-mathjax serves; nbgrader's own template
# folder must stay on the list (this setting replaces the one nbgrader would set).
_NBGRADER = os.path.dirname(importlib.util.find_spec("nbgrader").origin)
c.HTMLExporter.extra_template_basedirs = [
    os.path.join(HERE, "course_utils", "templates"),
    os.path.join(_NBGRADER, "server_extensions", "formgrader", "templates"),
]

# Every cell of a graded notebook gets this long; training belongs in lectures, not in graded cells.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
