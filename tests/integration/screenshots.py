"""Screenshots of the pages a browser test walks through, for the docs (docs/screenshots/).

Written only when TUNELAB_SCREENSHOTS names a folder (`TUNELAB_SCREENSHOTS=docs/screenshots`),
so an ordinary test run leaves the docs alone. Each is a PNG of the page as the test's 1000 px
wide viewport shows it, cut at `MAX_HEIGHT` and reduced to a 256-colour palette: small enough
to commit.
"""

import io
import os
from pathlib import Path

from PIL import Image

FOLDER = os.environ.get("TUNELAB_SCREENSHOTS", "")
MAX_HEIGHT = 1400


def screenshot(page, name: str, *, full_page: bool = False) -> None:
    """`page` as FOLDER/`name`.png, when a folder is asked for."""
    if not FOLDER:
        return
    shot = Image.open(io.BytesIO(page.screenshot(full_page=full_page))).convert("RGB")
    if shot.height > MAX_HEIGHT:
        shot = shot.crop((0, 0, shot.width, MAX_HEIGHT))
    folder = Path(FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    shot.quantize(colors=256).save(folder / f"{name}.png", optimize=True)
