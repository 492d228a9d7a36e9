"""Screenshots of the four samples' reports (docs/screenshots/*.png), with Debian's Chromium.

    python docs/make_screenshots.py            # needs /usr/bin/chromium and playwright

Each sample's report is rendered by `fpreplay report`, loaded from file:// in headless Chromium
(through Playwright, pointed at the system browser: no browser download) and photographed at
1200 px wide: the top of the page (verdict, warnings, next steps: NAME-top.png) and the
timelines with one IRP's story open (NAME.png).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ["a-paging-storm", "b-pool-ran-dry", "c-purge-during-incident", "d-healthy"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WIDTH, HEIGHT = 1200, 1500


def render(sample: str, out: Path) -> Path:
    from fpreplay.replay.cli import main

    page = out / f"{sample}.html"
    os.chdir(ROOT)   # the page names the trace as typed: traces/samples/..., as the README does
    rc = main(["report", f"traces/samples/{sample}/trace.etl", "-o", str(page), "--quiet"])
    if rc != 0:
        raise SystemExit(f"fpreplay report failed on sample {sample}")
    return page


def shoot(pages: dict[str, Path], into: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    into.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for sample, page_path in pages.items():
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(page_path.as_uri())
            page.wait_for_selector(".bk-Figure, .bk-root canvas, canvas", timeout=30_000)
            page.wait_for_timeout(800)
            # The timelines, with one IRP's story open where the page has any.
            page.evaluate("document.getElementById('timelines').scrollIntoView()")
            row = page.locator("section tr[data-irp]").first   # an IRP that decided an incident
            if not row.count():
                row = page.locator("tr[data-irp]").first
            if row.count():
                page.evaluate("k => window.fpStory(k)", row.get_attribute("data-irp"))
            page.evaluate("document.getElementById('timelines').scrollIntoView()")
            page.wait_for_timeout(300)
            shot = into / f"{sample}.png"
            page.screenshot(path=str(shot))
            top = into / f"{sample}-top.png"
            page.evaluate("window.scrollTo(0, 0)")
            page.evaluate("document.getElementById('story').style.display='none'")
            page.screenshot(path=str(top), clip={"x": 0, "y": 0, "width": WIDTH, "height": 900})
            shots += [top, shot]
            for png in (top, shot):
                small(png)
            page.close()
        browser.close()
    return shots


def small(png: Path) -> None:
    """256 colours are plenty for a page of text and lines: a third of the bytes."""
    from PIL import Image   # Pillow comes with Bokeh

    with Image.open(png) as im:
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(
            png, optimize=True)


def main() -> int:
    into = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    with tempfile.TemporaryDirectory() as tmp:
        pages = {s: render(s, Path(tmp)) for s in SAMPLES}
        for shot in shoot(pages, into):
            print(f"wrote {shot} ({shot.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
