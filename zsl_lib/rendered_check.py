"""Check the built book as a reader's browser shows it, and take a screenshot of every page.

    jupyter-book build .                                   # first, the executed book
    python -m zsl_lib.rendered_check _build/html --screenshots _build/screenshots

Each chapter page (every `.html` outside `_static`, `_sources`, `genindex`, `search`) is served
from localhost and opened in headless Chromium (driven by Playwright). A page fails when the
browser logs an error, a request fails (nothing may come from the network: MathJax and every
figure are the book's own files; a request that a redirect page cancels by moving on does not
count), an image does not load, a widget does not render, a link points to a page or file the
build does not have, or text outside code shows raw LaTeX delimiters (`\\(`, `\\[`, `$$`) after
MathJax has typeset the page. Prints one line per problem and exits with status 1 if there are
any.

Needs Chromium and Playwright: `apt-get install chromium` (Debian; the browser Playwright
downloads itself works too) and `pip install -r requirements-check.txt`.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

SKIPPED = ("_static", "_sources", "_images", "genindex.html", "search.html")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Text outside code that still reads as LaTeX once MathJax has run.
RAW_LATEX = r"""() => {
  const body = document.querySelector('main') || document.body;
  const copy = body.cloneNode(true);
  copy.querySelectorAll('pre, code, mjx-container, script, style, .MathJax').forEach(e => e.remove());
  return ['\\(', '\\[', '$$'].filter(d => copy.textContent.includes(d));
}"""
BROKEN_IMAGES = "() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
LINKS = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
WIDGETS = """() => [document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
              document.querySelectorAll('.jupyter-widgets').length]"""
MATHJAX_DONE = "() => !window.MathJax || (MathJax.startup && MathJax.startup.promise).then(() => true)"


def pages(root: Path) -> list[Path]:
    """The book's pages under `root`, in path order."""
    return sorted(p for p in root.rglob("*.html")
                  if not any(part in SKIPPED for part in p.relative_to(root).parts))


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A quiet local web server for `root` on a free port, and its base address."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def missing_target(root: Path, base: str, href: str) -> str | None:
    """The local file a link points to if it does not exist, else None (other sites are not checked)."""
    if not href.startswith(base):
        return None
    path = unquote(urlparse(href).path)[1:]
    target = root / path
    if target.is_dir():
        target = target / "index.html"
    return None if target.exists() else path


def failed_requests(failed: list[tuple[str, str]], moved_on: bool) -> list[str]:
    """The problems among a page's failed requests [(address, reason)]. A redirect page (the site's
    `index.html`) is left at once (`moved_on`): the browser cancels what it was still fetching for it
    (`net::ERR_ABORTED`), which is not a failure of the book; the page it leads to is checked itself."""
    return [f"request failed: {url} ({reason})" for url, reason in failed
            if not (moved_on and reason == "net::ERR_ABORTED")]


def check_page(page, root: Path, base: str, path: Path, screenshots: Path | None) -> list[str]:
    """Open one page and return its problems."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console error: {msg.text} ({msg.location.get('url', '')})")
            if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"script error: {err}"))
    failed: list[tuple[str, str]] = []
    page.on("requestfailed", lambda req: failed.append((req.url, req.failure)))
    page.on("response", lambda res: problems.append(f"HTTP {res.status}: {res.url}") if res.status >= 400 else None)
    address = base + path.relative_to(root).as_posix()
    page.goto(address, wait_until="networkidle")
    problems += failed_requests(failed, moved_on=page.url != address)
    page.evaluate(MATHJAX_DONE)
    problems += [f"image does not load: {src}" for src in page.evaluate(BROKEN_IMAGES)]
    problems += [f"link to a missing file: {target}" for target in
                 sorted({missing_target(root, base, href) for href in page.evaluate(LINKS)} - {None})]
    problems += [f"raw LaTeX in the text: {d}" for d in page.evaluate(RAW_LATEX)]
    views, rendered = page.evaluate(WIDGETS)
    if views and not rendered:
        problems.append(f"{views} widget(s) in the page, none rendered")
    if screenshots is not None:
        shot = screenshots / path.relative_to(root).with_suffix(".png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    return problems


def check(root: Path, screenshots: Path | None = None, browser_path: str | None = None, log=print) -> dict:
    """{page: [problems]} for every page of the built book under `root`."""
    from playwright.sync_api import sync_playwright
    if not (root / "index.html").exists():
        raise FileNotFoundError(f"{root / 'index.html'} does not exist; build the book first: jupyter-book build .")
    browser_path = browser_path or shutil.which("chromium")
    server, base = serve(root)
    found = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
            for path in pages(root):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                found[path.relative_to(root).as_posix()] = check_page(page, root, base, path, screenshots)
                page.close()
                log(f"{path.relative_to(root)}: {len(found[path.relative_to(root).as_posix()])} problem(s)")
            browser.close()
    finally:
        server.shutdown()
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.rendered_check", description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, help="write a full-page PNG of every page here")
    parser.add_argument("--browser", help="the Chromium executable (default: chromium on the PATH)")
    args = parser.parse_args(argv)
    found = check(args.html, args.screenshots, args.browser)
    problems = [(page, problem) for page, listed in found.items() for problem in listed]
    for page, problem in problems:
        print(f"{page}: {problem}")
    print(f"{len(found)} pages, {len(problems)} problem(s)")
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
