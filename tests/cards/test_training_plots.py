"""The DPO-dynamics figure of `savi train` (the paper's A.4): smoothing by hand, the lines carry
exactly the logged points, the PNG lands beside each card, and stale plots do not outlive a run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from videosavi.cards.model_card import ModelCardInputs, render_model_card
from videosavi.cards.training_plots import (
    PANELS,
    dpo_dynamics_figure,
    gaussian_smooth,
    render_training_plots,
    smoothing_sigma,
)
from videosavi.training.metrics import PAPER_METRICS


def history(n: int = 12) -> list[dict[str, float]]:
    return [{"step": 10 * i, "loss": 0.69 - i / 100, "rewards/chosen": 0.1 * i, "rewards/rejected": -0.05 * i,
             "rewards/margins": 0.15 * i, "rewards/accuracies": min(1.0, 0.5 + i / 20)} for i in range(1, n + 1)]


def test_gaussian_smoothing_by_hand() -> None:
    w = [math.exp(-0.5 * d * d) for d in range(5)]  # sigma 1: weights at distance 0..4
    # point 0 of [0, 0, 3]: neighbours at distance 0, 1, 2 (the window is cut at the end and renormalised)
    assert gaussian_smooth([0, 0, 3], 1.0)[0] == pytest.approx(3 * w[2] / (w[0] + w[1] + w[2]))
    # the middle point sees both ends at distance 1
    assert gaussian_smooth([0, 0, 3], 1.0)[1] == pytest.approx(3 * w[1] / (w[0] + 2 * w[1]))
    assert gaussian_smooth([2.5] * 7, 15.0) == pytest.approx([2.5] * 7)  # a constant stays put
    assert gaussian_smooth([1.0, 4.0], 0) == [1.0, 4.0]
    # far points (beyond 4 sigma) do not count: a spike 10 points away leaves point 0 untouched
    assert gaussian_smooth([1.0] + [1.0] * 9 + [100.0], 1.0)[0] == pytest.approx(1.0)
    assert smoothing_sigma(1000) == 15.0 and smoothing_sigma(8) == 2.0


def test_figure_lines_hold_every_logged_point_raw_and_smoothed() -> None:
    hist = history(12)
    fig = dpo_dynamics_figure(hist)
    by_label = {line.get_label(): line for ax in fig.axes for line in ax.lines}
    for _, metrics in PANELS:
        for metric in metrics:
            name = metric.split("/")[-1]
            values = [row[metric] for row in hist]
            raw, smooth = by_label[f"{name} (raw)"], by_label[f"{name} (smoothed, sigma 3)"]
            assert list(raw.get_xdata()) == [row["step"] for row in hist]
            assert list(raw.get_ydata()) == pytest.approx(values)
            assert len(smooth.get_xdata()) == 12
            assert list(smooth.get_ydata()) == pytest.approx(gaussian_smooth(values, 3.0))
    assert len(by_label) == 2 * sum(len(m) for _, m in PANELS)


def test_render_writes_pngs_beside_the_cards_and_clears_stale_ones(tmp_path: Path) -> None:
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    made = render_training_plots(history(), tmp_path, [adapter, merged])
    assert made == {"DPO training dynamics": "plots/dpo_dynamics.png"}
    main = tmp_path / "plots" / "dpo_dynamics.png"
    with Image.open(main) as img:
        assert img.format == "PNG" and img.size[0] > 500
    for folder in (adapter, merged):
        assert (folder / made["DPO training dynamics"]).read_bytes() == main.read_bytes()
    # a later run in the same folder that logged no metrics must not leave the old figure behind
    assert render_training_plots([{"step": 1, "epoch": 1.0}], tmp_path, [adapter, merged]) == {}
    assert not main.exists() and not (adapter / "plots" / "dpo_dynamics.png").exists()


def test_model_card_links_the_plots() -> None:
    inputs = ModelCardInputs(
        base_model="tiny-qwen2-vl", base_model_revision="local:x", dataset_repo="org/v", dataset_revision="iter1",
        dataset_sha="a" * 40, hyperparameters={}, counts={"total_rows": 1, "kept_rows": 1, "kept_videos": 1,
        "total_videos": 1}, steps=1, final_metrics={"loss": 0.6}, metric_names=PAPER_METRICS,
        plots={"DPO training dynamics": "plots/dpo_dynamics.png"})
    text = render_model_card(inputs).text
    assert "## Training dynamics" in text and "![DPO training dynamics](plots/dpo_dynamics.png)" in text
    bare = render_model_card(ModelCardInputs(**{**inputs.__dict__, "plots": {}})).text
    assert "## Training dynamics" not in bare
