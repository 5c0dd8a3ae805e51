"""A Sphinx extension of the book: a built book that reads right without a network and leaves
a browser's console clean.

* **MathJax** from the book's own files instead of a CDN, so that every equation renders
  offline. `_config.yml` points `mathjax_path` at `_static/mathjax/tex-mml-chtml.js`; this
  extension copies that loader and the components it loads on demand (TeX input and its
  extensions, the CHTML output and its fonts, the menu, accessibility) into the built HTML.
  The files come from the PyPI package `django-static-mathjax` (MathJax 3.2 as released, in its
  es5 build; it installs a Python package named `mathjax` and needs no Django).
* **Widgets** (chapter 10's slider) from the book's own files when `npm ci` has installed
  `package.json`'s two packages (ipywidgets' HTML manager and RequireJS) into `node_modules/`;
  without them the pages load both from CDNs, as myst-nb does by default.
* **Each script once**: the book's theme and its extensions register some inline scripts twice
  (`const THEBE_JS_URL = ...` twice is a script error); duplicates are dropped from each page.
* **Widget labels with MathJax 3**: the widgets' HTML manager calls MathJax 2's `MathJax.Hub.Queue`;
  a small `Hub` passes its work to MathJax 3.
* **The theme's first visit**: with nothing stored yet, the theme reads an empty colour mode and
  logs an error before falling back to "auto"; a one-line script sets "auto" first.
* **The root page**: the book's first page is `book/index`, so the site's `index.html` only
  redirects to it. The redirect that Jupyter Book writes names no icon, and a browser that asks
  for `/favicon.ico` before it follows the redirect logs a 404; the book writes its own redirect,
  with the book's icon, before that one would be written.
"""
from __future__ import annotations

import shutil
from pathlib import Path

MATHJAX_LOADER = "tex-mml-chtml.js"
MATHJAX_ON_DEMAND = ("input", "output", "ui", "a11y")
REQUIRE, MANAGER = "require.js", "@jupyter-widgets/html-manager/dist"
WIDGETS = {"require.js": Path("node_modules/requirejs/require.js"),
           "embed-amd.js": Path("node_modules") / MANAGER / "embed-amd.js"}
DEFAULT_MODE = 'if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = "auto"; }'
# ipywidgets' HTML manager typesets widget labels with MathJax 2's `MathJax.Hub.Queue`; the book loads
# MathJax 3, which has no Hub. Once MathJax has loaded (deferred scripts run before DOMContentLoaded),
# a Hub whose Queue hands the element to MathJax 3's typesetter.
MATHJAX2_QUEUE = """document.addEventListener("DOMContentLoaded", function () {
  if (window.MathJax && MathJax.startup && !MathJax.Hub) {
    MathJax.Hub = {Queue: function (job) {
      MathJax.startup.promise.then(function () { return MathJax.typesetPromise([job[2]]); });
    }};
  }
});"""


def mathjax_files() -> Path:
    """The es5 build of the installed MathJax."""
    import mathjax
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def widget_files(app) -> dict[str, Path] | None:
    """The installed widget scripts (name -> file), or None when `npm ci` has not been run."""
    root = Path(app.confdir)
    files = {name: root / path for name, path in WIDGETS.items()}
    return files if all(path.is_file() for path in files.values()) else None


def use_local_widgets(app, config) -> None:
    """Point myst-nb's widget scripts at the book's own copies, when they are installed. The HTML
    manager fetches its fonts from `<data-jupyter-widgets-cdn>@jupyter-widgets/html-manager/dist/`,
    a path relative to the page: every chapter page sits one folder below the root (`book/`)."""
    if widget_files(app) is not None:
        config.nb_ipywidgets_js = {f"widgets/{REQUIRE}": {},
                                   f"widgets/{MANAGER}/embed-amd.js": {"data-jupyter-widgets-cdn": "../_static/widgets/"}}


def one_of_each_script(app, pagename, templatename, context, doctree) -> None:
    """Drop scripts registered twice (same file or same inline body, same attributes; the priority
    may differ), keeping the first."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (script.filename or "", tuple(sorted(script.attributes.items())))   # an inline one: None or ""
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique          # in place: the builder renders from this very list


def copy_assets(app, exception) -> None:
    """After an HTML build, copy MathJax (and the widget scripts, if installed) into `_static/`."""
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    source, target = mathjax_files(), static / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / MATHJAX_LOADER, target / MATHJAX_LOADER)
    for folder in MATHJAX_ON_DEMAND:
        shutil.copytree(source / folder, target / folder, dirs_exist_ok=True)
    widgets = widget_files(app)
    if widgets is not None:
        # the HTML manager and the fonts it loads from beside itself, without source maps
        shutil.copytree(widgets["embed-amd.js"].parent, static / "widgets" / MANAGER, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.map"))
        shutil.copy2(widgets["require.js"], static / "widgets" / REQUIRE)
        # its icon fonts are fetched relative to the page itself
        shutil.copytree(widgets["embed-amd.js"].parent, Path(app.outdir) / "book" / MANAGER, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.js", "*.map", "*.txt"))


def root_redirect(app, exception) -> None:
    """Write the site's `index.html`: a redirect to the first page that names the book's icon."""
    if exception is not None or app.builder.format != "html" or app.config.master_doc == "index":
        return
    icon = f'<link rel="icon" href="_static/{Path(app.config.html_favicon).name}">\n' if app.config.html_favicon else ""
    (Path(app.outdir) / "index.html").write_text(
        f'<!DOCTYPE html>\n<meta charset="utf-8">\n{icon}'
        f'<meta http-equiv="Refresh" content="0; url={app.config.master_doc}.html">\n', encoding="utf8")


def setup(app):
    app.connect("config-inited", use_local_widgets)
    # early: a handler of this event that returns a template name ends the event for later ones
    app.connect("html-page-context", one_of_each_script, priority=100)
    app.connect("build-finished", copy_assets)
    app.connect("build-finished", root_redirect, priority=100)    # before sphinx-external-toc's own redirect
    app.add_js_file(None, body=DEFAULT_MODE, priority=1)
    app.add_js_file(None, body=MATHJAX2_QUEUE, priority=2)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
