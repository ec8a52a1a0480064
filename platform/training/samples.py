"""Sample outputs before and after a run, side by side on the run page.

The first few held-out pictures are decoded greedily by the starting model and by the tuned
one; the pictures (as the model's input is shown: greyscale for colorization) and the outputs'
files are saved under the run's media folder, and the outputs are kept in the API's candidate
format of the task (`training.outputs`), so the page draws them as the annotator UI does.
"""

from collections.abc import Sequence
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from training.outputs import Picture, Store, TaskOutputs, png_bytes

SAMPLE_IMAGES = 4


def _run_store(run_id: int) -> Store:
    """Files under the run's samples folder; a resumed run writes the same names again."""
    folder = f"tuning/runs/{run_id}/samples"

    def store(name: str, data: bytes) -> str:
        path = f"{folder}/{name}"
        if default_storage.exists(path):
            default_storage.delete(path)
        return default_storage.url(default_storage.save(path, ContentFile(data)))

    return store


def before_after_samples(
    *, run_id: int, pictures: Sequence[Picture], before: TaskOutputs, after: TaskOutputs,
) -> list[dict[str, Any]]:
    """`[{"image_url", "width", "height", "before": output, "after": output}]`."""
    store = _run_store(run_id)
    first = before.decode(pictures, temperature=0.0, seed=0)
    second = after.decode(pictures, temperature=0.0, seed=0)
    samples = []
    for index, picture in enumerate(pictures):
        width, height = picture.size
        samples.append({
            "image_url": store(f"{index}.png", png_bytes(before.shown(picture))),
            "width": width, "height": height,
            "before": before.output(first[index], picture, store, f"{index}-before"),
            "after": after.output(second[index], picture, store, f"{index}-after"),
        })
    return samples
