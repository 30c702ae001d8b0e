"""Regenerate the README's screenshot of the HTML coverage report (docs/img/coverage-report.png).

    python scripts/readme_screenshot.py            # needs ../shared/data and Debian's chromium

It imports the shared corpus into a temporary store, writes `genremap report --format html`
with the packaged rules, opens it in headless Chromium (through chromedriver and selenium, the
test extra), types `soul` into the subgenre table's search box and saves the top of the page
(1200 x 2330 pixels). Run it whenever the rules change the corpus's figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "spotify_artists_genres.csv"
OUT = ROOT / "docs" / "img" / "coverage-report.png"
WIDTH, HEIGHT = 1200, 2330  # the top of the page: header, chart and the first rows of the table


def main() -> int:
    if not CORPUS.exists():
        print(f"the shared corpus is absent ({CORPUS})", file=sys.stderr)
        return 2
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        print("needs chromium and chromedriver (apt-get install chromium chromium-driver)", file=sys.stderr)
        return 2
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as tmp:
        db, page = Path(tmp) / "corpus.db", Path(tmp) / "coverage.html"
        genremap = [sys.executable, "-m", "genremap"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        # Run in the temporary folder, so the page names the store `corpus.db` as a user's would.
        for args in (
            ["import", str(CORPUS), "--db", db.name],
            ["report", "--db", db.name, "--format", "html", "--out", page.name],
        ):
            subprocess.run([*genremap, *args], check=True, capture_output=True, cwd=tmp, env=env)
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
        ):
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options, service=Service(driver))
        try:
            browser.get(page.as_uri())
            WebDriverWait(browser, 20).until(
                lambda b: b.execute_script("return document.documentElement.dataset.ready") == "true"
            )
            search = browser.find_element(By.CSS_SELECTOR, '[data-table="subgenres"] input[type="search"]')
            search.send_keys("soul")
            OUT.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(OUT))
        finally:
            browser.quit()
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
