"""Write a run's report and save a PNG screenshot of it from headless Chromium (for the README)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from longscope.core import UsageError
from longscope.report import browser
from longscope.report.commands import build_report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory, e.g. runs/smollm2-135m-instruct")
    parser.add_argument("--out", type=Path, default=Path("docs/report.png"), help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels")
    parser.add_argument("--height", type=int, default=1600, help="window height (ignored with --full-page)")
    parser.add_argument(
        "--full-page", action="store_true", help="capture the whole page, not the first screen"
    )
    args = parser.parse_args()
    why = browser.missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    try:
        written = build_report(args.run_dir)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(written.message)
    with browser.headless(args.width, args.height) as driver:
        driver.get(written.path.resolve().as_uri())
        browser.screenshot(driver, args.out, full_page=args.full_page)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
