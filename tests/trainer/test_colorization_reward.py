"""Colorization reward: colourfulness against the paper's formula, PSNR against torchmetrics, and
the fidelity term keeping noise from paying."""

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from trainer.data.shapes import ShapesConfig, generate_split
from trainer.rewards.colorization import colorfulness, colorization_reward, psnr


def _paper_colorfulness(image: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003), transcribed: image (H, W, 3) RGB in 0-255."""
    r, g, b = (image[..., c].astype(np.float64) for c in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    std_rgyb = np.sqrt(np.std(rg) ** 2 + np.std(yb) ** 2)
    mean_rgyb = np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)
    return float(std_rgyb + 0.3 * mean_rgyb)


@pytest.fixture(scope="module")
def scenes() -> tuple[torch.Tensor, torch.Tensor]:
    """True colours and greyscale (as RGB) of 40 small scenes, (B, 3, H, W) in [0, 1]."""
    config = ShapesConfig(image_size=32, max_objects=4, min_object_size=0.2, max_object_size=0.5)
    split = generate_split("test", 40, config)
    true = torch.tensor(np.stack([s.image for s in split])).permute(0, 3, 1, 2) / 255.0
    gray = torch.tensor(np.stack([s.gray for s in split]))[:, None].expand(-1, 3, -1, -1) / 255.0
    return true, gray.contiguous()


def test_grey_images_score_exactly_zero(scenes):
    _, gray = scenes
    assert colorfulness(gray).abs().max().item() == 0.0
    ramp = torch.linspace(0, 1, 16).view(1, 1, 4, 4).expand(1, 3, 4, 4)
    assert colorfulness(ramp).item() == 0.0


def test_known_values():
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    # rg = 255, yb = 127.5 everywhere: M = 0.3 * sqrt(255^2 + 127.5^2).
    assert colorfulness(red).item() == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-6)
    checker = torch.zeros(1, 3, 4, 4)
    checker[:, 0, ::2] = 1.0  # red rows
    checker[:, 1, 1::2] = 1.0  # green rows
    # rg = +-255 (std 255, mean 0), yb = 127.5 everywhere: M = 255 + 0.3 * 127.5.
    assert colorfulness(checker).item() == pytest.approx(255 + 0.3 * 127.5, rel=1e-6)
    pale_red = 0.5 * red + 0.25  # half the saturation: half the colourfulness
    assert colorfulness(pale_red).item() == pytest.approx(colorfulness(red).item() / 2, rel=1e-6)


def test_equals_the_papers_formula(scenes):
    true, _ = scenes
    noise = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    images = torch.cat([true, noise])
    ours = colorfulness(images).double().numpy()
    paper = [_paper_colorfulness(255.0 * img.permute(1, 2, 0).double().numpy()) for img in images]
    np.testing.assert_allclose(ours, paper, rtol=1e-5)


def test_psnr_equals_torchmetrics(scenes):
    true, gray = scenes
    ours = psnr(gray, true)
    theirs = peak_signal_noise_ratio(gray, true, data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert (ours - theirs).abs().max() < 1e-4
    assert psnr(true, true).tolist() == [100.0] * len(true)  # capped, never infinite


def test_painting_noise_does_not_pay(scenes):
    """From a half-saturated colorization, noise lowers the reward; more saturation raises it."""
    true, gray = scenes
    half = gray + 0.5 * (true - gray)
    generator = torch.Generator().manual_seed(1)
    noise = torch.rand(true.shape, generator=generator) - 0.5
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    chroma_noise = noise - (noise * luma).sum(dim=1, keepdim=True)  # keeps the grey level
    base = colorization_reward(half, true)
    for amplitude in (0.2, 0.5, 1.0):
        for painted in (half + amplitude * chroma_noise, half + amplitude * noise):
            painted = painted.clamp(0, 1)
            assert (colorfulness(painted) > colorfulness(half)).all()  # noise is colourful...
            assert (colorization_reward(painted, true) < base).all()  # ...but does not pay
    assert (colorization_reward(noise + 0.5, true) < base).all()
    assert (colorization_reward(gray + 0.8 * (true - gray), true) > base).all()
    assert (colorization_reward(true, true) > base).all()


def test_reward_is_colourfulness_plus_weighted_psnr(scenes):
    true, gray = scenes
    pred = gray + 0.3 * (true - gray)
    reward = colorization_reward(pred, true, fidelity_weight=2.5)
    assert torch.allclose(reward, colorfulness(pred) + 2.5 * psnr(pred, true))
    assert torch.equal(colorization_reward(pred, true, fidelity_weight=0), colorfulness(pred))


def test_bad_inputs_are_rejected_with_a_message(scenes):
    true, _ = scenes
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        colorfulness(true[:, 0])
    with pytest.raises(ValueError, match="float"):
        colorfulness((255 * true).to(torch.uint8))
    with pytest.raises(ValueError, match="shape"):
        psnr(true, true[:, :, :16])
    with pytest.raises(ValueError, match="fidelity_weight"):
        colorization_reward(true, true, fidelity_weight=-1)
