"""A Sphinx extension of the book: MathJax from the book's own files instead of a CDN, so that
every equation renders without a network.

`_config.yml` points `mathjax_path` at `_static/mathjax/tex-mml-chtml.js` (Sphinx's default
loader, served locally); this extension copies that loader and the components it loads on
demand (TeX input and its extensions, the CHTML output and its fonts, the menu, accessibility)
into the built HTML. The files come from the PyPI package `django-static-mathjax` (MathJax 3.2
as released, in its es5 build; it installs a Python package named `mathjax` and needs no
Django), listed in requirements.txt.
"""
from __future__ import annotations

import shutil
from pathlib import Path

LOADER = "tex-mml-chtml.js"
ON_DEMAND = ("input", "output", "ui", "a11y")


def mathjax_files() -> Path:
    """The es5 build of the installed MathJax."""
    import mathjax
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def copy_mathjax(app, exception) -> None:
    """After an HTML build, copy MathJax into `_static/mathjax/`."""
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_files(), Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / LOADER, target / LOADER)
    for folder in ON_DEMAND:
        shutil.copytree(source / folder, target / folder, dirs_exist_ok=True)


def setup(app):
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
