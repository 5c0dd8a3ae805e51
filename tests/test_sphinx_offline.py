"""The book's Sphinx extension (zsl_lib.sphinx_offline) on a two-page Sphinx project: MathJax is
served from the build itself, a script registered twice is written once, and the theme's first
visit gets a colour mode; then the rendered-page check (zsl_lib.rendered_check) in headless
Chromium, where Chromium and Playwright are installed."""
import importlib.util
import shutil
import socket
from pathlib import Path

import pytest
from sphinx.cmd.build import build_main

from zsl_lib import rendered_check, sphinx_offline

CONF = '''
extensions = ["sphinx.ext.mathjax", "zsl_lib.sphinx_offline"]
mathjax_path = "mathjax/tex-mml-chtml.js"
html_theme = "alabaster"
html_favicon = "favicon.svg"          # else a browser asks for /favicon.ico

def setup(app):                       # two extensions registering one inline script, as the book's do
    app.add_js_file(None, body="const ONCE = 1;")
    app.add_js_file("", body="const ONCE = 1;")
'''
INDEX = '''Title
=====

Inline math :math:`\\\\alpha + \\\\beta` and a display:

.. math:: H = \\\\frac{2 U S}{U + S}

See :doc:`other`.

.. toctree::

   other
'''


def build(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(CONF)
    (source / "index.rst").write_text(INDEX)
    (source / "favicon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 2 2"><rect width="2" height="2"/></svg>')
    (source / "other.rst").write_text("Other\n=====\n\nBack to :doc:`index`.\n")
    out = tmp_path / "html"
    assert build_main(["-q", "-b", "html", str(source), str(out)]) == 0
    return out


def test_mathjax_is_served_from_the_build_and_each_script_is_written_once(tmp_path):
    out = build(tmp_path)
    assert (out / "_static" / "mathjax" / "tex-mml-chtml.js").stat().st_size > 100_000
    assert (out / "_static" / "mathjax" / "input" / "tex" / "extensions").is_dir()    # loaded on demand
    page = (out / "index.html").read_text()
    assert 'src="_static/mathjax/tex-mml-chtml.js"' in page and "cdn.jsdelivr" not in page
    assert page.count("const ONCE = 1;") == 1
    assert sphinx_offline.DEFAULT_MODE in page


@pytest.mark.skipif(shutil.which("chromium") is None or importlib.util.find_spec("playwright") is None,
                    reason="needs Debian's chromium and Playwright (requirements-check.txt)")
def test_the_rendered_check_passes_a_good_build_and_names_what_breaks_a_bad_one(tmp_path):
    out = build(tmp_path)
    assert rendered_check.check(out, tmp_path / "shots", log=lambda *_: None) == {"index.html": [], "other.html": []}
    assert (tmp_path / "shots" / "index.png").stat().st_size > 0
    # A redirect page is left before its icon arrives (here: never, from a server that does not answer): the
    # browser, when it has asked for the icon at all, cancels that request, which is not a problem of the book.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    (out / "moved.html").write_text(f'<!DOCTYPE html>\n<meta charset="utf-8">\n'    # as the book's root redirect
                                    f'<link rel="icon" href="http://127.0.0.1:{silent.getsockname()[1]}/i.svg">\n'
                                    '<meta http-equiv="Refresh" content="0; url=index.html">\n')
    assert rendered_check.check(out, log=lambda *_: None)["moved.html"] == []
    silent.close()
    (out / "moved.html").unlink()
    page = out / "index.html"
    page.write_text(page.read_text().replace("</body>", '<img src="_images/none.png"><a href="gone.html">x</a>'
                                             "<p>\\(x\\)</p><script>undefinedCall()</script></body>")
                    .replace("_static/mathjax/tex-mml-chtml.js", "_static/mathjax/missing.js"))
    found = rendered_check.check(out, log=lambda *_: None)["index.html"]
    for expected in ("image does not load", "link to a missing file: gone.html", "raw LaTeX in the text: \\(",
                     "script error", "HTTP 404"):
        assert any(expected in problem for problem in found), (expected, found)


def test_a_request_cancelled_because_a_redirect_page_moved_on_is_not_a_problem():
    failed = [("http://x/_static/favicon.svg", "net::ERR_ABORTED"), ("http://x/a.js", "net::ERR_CONNECTION_REFUSED")]
    assert rendered_check.failed_requests(failed, moved_on=True) == [
        "request failed: http://x/a.js (net::ERR_CONNECTION_REFUSED)"]
    assert rendered_check.failed_requests(failed, moved_on=False) == [
        "request failed: http://x/_static/favicon.svg (net::ERR_ABORTED)",
        "request failed: http://x/a.js (net::ERR_CONNECTION_REFUSED)"]


def test_the_root_redirect_names_the_icon_and_the_first_page(tmp_path):
    from types import SimpleNamespace
    app = SimpleNamespace(outdir=str(tmp_path), builder=SimpleNamespace(format="html"),
                          config=SimpleNamespace(master_doc="book/index", html_favicon="book/favicon.svg"))
    sphinx_offline.root_redirect(app, None)
    page = (tmp_path / "index.html").read_text()
    assert '<link rel="icon" href="_static/favicon.svg">' in page
    assert 'content="0; url=book/index.html"' in page
    app.config.master_doc = "index"                  # the first page is the root itself: no redirect
    (tmp_path / "index.html").unlink()
    sphinx_offline.root_redirect(app, None)
    assert not (tmp_path / "index.html").exists()
