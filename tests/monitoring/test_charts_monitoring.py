"""The pure SVG charts of the monitoring pages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from clinaiops.portal.charts_monitoring import bin_labels, drift_histogram_svg, psi_bars_svg

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("viewBox")
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    return root


def _by_class(root: ET.Element, css: str) -> list[ET.Element]:
    return [e for e in root.iter() if css in (e.get("class") or "").split()]


def test_bin_labels_name_open_outer_bins_and_inner_ranges() -> None:
    assert bin_labels((90.0, 120.0, 135.5, 180.0), ()) == ["≤ 120", "120–135.5", "> 135.5"]
    assert bin_labels((0.0, 0.0, 1.0), ()) == ["≤ 0", "> 0"]
    assert bin_labels((), ("0", "1")) == ["0", "1"]
    assert bin_labels((0.08321, 0.1, 0.12), ()) == ["≤ 0.1", "> 0.1"]


def test_histogram_draws_a_reference_and_a_current_bar_per_bin_with_exact_tooltips() -> None:
    root = _parse(
        drift_histogram_svg(
            reference=[0.5, 0.3, 0.2], current=[0.1, 0.3, 0.6], labels=["≤ 120", "120–140", "> 140"], title="SBP"
        )
    )
    assert len(_by_class(root, "bar-reference")) == len(_by_class(root, "bar-current")) == 3
    heights = [float(e.get("height", 0)) for e in _by_class(root, "bar-current")]
    assert heights[2] > heights[1] > heights[0] > 0
    tooltips = [t.text for t in root.iter(f"{SVG}title")]
    assert "> 140: training 20.0%, current 60.0%" in tooltips
    legend = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "training snapshot" in legend and "current window" in legend


def test_psi_chart_marks_the_thresholds_and_prints_every_severity() -> None:
    root = _parse(
        psi_bars_svg(
            [("sbp_mean_7d", 0.61, "severe"), ("age", 0.02, "stable"), ("nocturnal_dip", 0.14, "watch")],
            noise_floor=0.05,
        )
    )
    assert [e.get("class") for e in _by_class(root, "psi")] == ["psi psi-severe", "psi psi-stable", "psi psi-watch"]
    values = [t.text for t in _by_class(root, "value")]
    assert values == ["0.610 severe", "0.020 stable", "0.140 watch"]
    thresholds = _by_class(root, "threshold")
    assert len(thresholds) == 3  # watch, severe, noise
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {"watch 0.1", "severe 0.25", "noise"} <= labels
    # The severe line sits right of the watch line, and the longest bar is the largest PSI.
    assert float(thresholds[1].get("x1", 0)) > float(thresholds[0].get("x1", 0))
    widths = [float(e.get("width", 0)) for e in _by_class(root, "psi")]
    assert widths[0] == max(widths)


@pytest.mark.parametrize("name", ['<script>alert("x")</script>', "a & b"])
def test_names_are_escaped(name: str) -> None:
    for svg in (
        psi_bars_svg([(name, 0.3, "severe")]),
        drift_histogram_svg(reference=[1.0], current=[1.0], labels=[name], title=name),
    ):
        assert "<script>" not in svg
        _parse(svg)


def test_empty_inputs_give_valid_empty_charts() -> None:
    assert "No features were compared" in psi_bars_svg([])
    assert "No histogram available" in drift_histogram_svg(reference=[], current=[], labels=[], title="x")
    _parse(psi_bars_svg([]))


def test_numeric_histograms_print_the_cut_points_at_the_bin_boundaries() -> None:
    root = _parse(
        drift_histogram_svg(
            reference=[0.5, 0.3, 0.2],
            current=[0.1, 0.3, 0.6],
            labels=bin_labels((90.0, 120.0, 135.5, 180.0), ()),
            cuts=(120.0, 135.5),
            title="SBP",
        )
    )
    assert [t.text for t in _by_class(root, "cut-label")] == ["120", "136"]  # three significant figures
    assert not _by_class(root, "bin-label")
    assert "120–135.5: training 30.0%, current 30.0%" in [t.text for t in root.iter(f"{SVG}title")]
