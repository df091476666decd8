"""Tests for the server-rendered SVG charts in ``clinaiops.portal.charts``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clinaiops.portal.charts import (
    BPPoint,
    BPThresholds,
    bp_trend_svg,
    factor_bars_svg,
    probability_bars_svg,
)

NS = {"svg": "http://www.w3.org/2000/svg"}
# The default approval policy's safety thresholds (DESIGN §2); the chart takes them from the policy in force.
POLICY = BPThresholds(crisis_sbp=180, crisis_dbp=120, hypotension_sbp=90, hypotension_dbp=60)
LONDON = ZoneInfo("Europe/London")
START = datetime(2025, 11, 3, 7, 12, tzinfo=LONDON)


def _points() -> list[BPPoint]:
    sources = ["cuff", "ppg", "ecg", "manual", "cuff", "ppg"]
    return [BPPoint(START + timedelta(days=i, hours=i), 142 - i, 88 - i, source) for i, source in enumerate(sources)]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def _with_class(root: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{NS['svg']}}}{tag}") if css_class in _classes(e)]


def _child(element: ET.Element, tag: str) -> ET.Element:
    found = element.find(f"svg:{tag}", NS)
    assert found is not None, f"no <{tag}> in <{element.tag}>"
    return found


def _all_text(root: ET.Element) -> str:
    return " ".join(t.text or "" for t in root.iter(f"{{{NS['svg']}}}text"))


def _bp(
    points: list[BPPoint],
    *,
    markers: Sequence[tuple[datetime, str]] = (),
    title: str = "Home blood pressure",
) -> str:
    return bp_trend_svg(points, target_sbp=130, target_dbp=80, thresholds=POLICY, markers=markers, title=title)


# --------------------------------------------------------------------------- #
# Shared: well-formed, accessible SVG
# --------------------------------------------------------------------------- #

ALL_CHARTS = {
    "bp": lambda: _bp(_points(), markers=[(START + timedelta(days=2), "step 2→3")]),
    "bp-empty": lambda: _bp([]),
    "bp-single": lambda: _bp(_points()[:1]),
    "factors": lambda: factor_bars_svg([("Mean SBP", 0.4), ("Adherence", -0.2)]),
    "factors-empty": lambda: factor_bars_svg([]),
    "probs": lambda: probability_bars_svg({"decrease": 0.1, "maintain": 0.9}),
    "probs-empty": lambda: probability_bars_svg({}),
}


@pytest.mark.parametrize("name", sorted(ALL_CHARTS))
def test_every_chart_is_well_formed_accessible_scalable_svg(name: str) -> None:
    root = _parse(ALL_CHARTS[name]())
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.get("viewBox", "").startswith("0 0 ")
    assert root.get("width") == "100%"
    first = root[0]
    assert first.tag == f"{{{NS['svg']}}}title"
    assert first.text == root.get("aria-label")


def test_empty_bp_chart_says_no_readings() -> None:
    root = _parse(_bp([]))
    assert "No readings in this period" in _all_text(root)


def test_empty_factor_chart_says_no_explanation() -> None:
    root = _parse(factor_bars_svg([]))
    assert "No explanation available" in _all_text(root)


def test_custom_title_is_used_for_title_and_aria_label() -> None:
    root = _parse(probability_bars_svg({"a": 1.0}, title="Risk & benefit"))
    assert root.get("aria-label") == "Risk & benefit"
    assert root[0].text == "Risk & benefit"


# --------------------------------------------------------------------------- #
# Escaping
# --------------------------------------------------------------------------- #

EVIL = '<script>alert("x")</script>'


@pytest.mark.parametrize(
    "render",
    [
        lambda: _bp(_points(), markers=[(START + timedelta(days=1), EVIL)], title=EVIL),
        lambda: _bp([BPPoint(START, 150, 90, EVIL)]),
        lambda: _bp([], title=EVIL),
        lambda: factor_bars_svg([(EVIL, 0.5), ("ok", -0.5)], title=EVIL),
        lambda: factor_bars_svg([], title=EVIL),
        lambda: probability_bars_svg({EVIL: 0.5, "maintain": 0.5}, title=EVIL),
    ],
    ids=[
        "bp-marker-title",
        "bp-source",
        "bp-empty",
        "factors",
        "factors-empty",
        "probs",
    ],
)
def test_labels_are_escaped_never_raw(render: Callable[[], str]) -> None:
    svg = render()
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    root = _parse(svg)  # still well-formed
    assert not list(root.iter("script"))
    assert not list(root.iter(f"{{{NS['svg']}}}script"))


def test_xml_illegal_control_characters_are_dropped() -> None:
    root = _parse(factor_bars_svg([("bad\x00\x07label", 0.1)]))
    assert "badlabel" in _all_text(root)


# --------------------------------------------------------------------------- #
# Blood-pressure trend
# --------------------------------------------------------------------------- #


def test_bp_chart_has_exactly_one_tooltip_per_reading() -> None:
    points = _points()
    root = _parse(_bp(points))
    readings = _with_class(root, "g", "reading")
    assert len(readings) == len(points)
    for group in readings:
        assert len(group.findall("svg:title", NS)) == 1


def test_bp_tooltip_shows_local_time_values_and_source() -> None:
    point = BPPoint(START, 142, 88, "cuff")
    root = _parse(_bp([point]))
    (group,) = _with_class(root, "g", "reading")
    title = group.find("svg:title", NS)
    assert title is not None
    assert title.text == "03 Nov 07:12 \u2014 142/88 (cuff)"


def test_bp_tooltips_use_display_zone_of_the_readings() -> None:
    utc_point = BPPoint(datetime(2025, 7, 1, 6, 0, tzinfo=UTC), 120, 70, "cuff")
    local_first = BPPoint(datetime(2025, 6, 30, 8, 0, tzinfo=LONDON), 125, 75, "cuff")
    root = _parse(_bp([utc_point, local_first]))
    texts = {_child(g, "title").text for g in _with_class(root, "g", "reading")}
    assert "01 Jul 07:00 \u2014 120/70 (cuff)" in texts  # BST = UTC+1


def test_wearable_readings_are_hollow_cuff_filled_and_typed_in_readings_another_shape() -> None:
    root = _parse(_bp(_points()))
    white = "#FFFFFF"
    for group in _with_class(root, "g", "reading"):
        source = group.get("data-source")
        if source == "manual":  # typed in: a diamond and a triangle, no circle or square
            assert "manual" in _classes(group)
            assert group.find("svg:circle", NS) is None and group.find("svg:rect", NS) is None
            assert len(group.findall("svg:polygon", NS)) == 2
            continue
        circle = group.find("svg:circle", NS)
        square = group.find("svg:rect", NS)
        assert circle is not None
        assert square is not None
        if source in ("ppg", "ecg"):
            assert "wearable" in _classes(group)
            assert circle.get("fill") == white
            assert square.get("fill") == white
            assert circle.get("stroke") not in (None, white)
        else:
            assert "wearable" not in _classes(group)
            assert circle.get("fill") == circle.get("stroke") != white
            assert square.get("fill") == square.get("stroke") != white
    assert len(_with_class(root, "g", "wearable")) == 3  # two PPG, one ECG


def test_each_source_is_its_own_series_never_one_zigzag_line() -> None:
    """Cuff and wearable readings joined in one line made a zigzag that read as variability (issue 11)."""
    root = _parse(_bp(_points()))
    cuff_sbp = [e for e in _with_class(root, "polyline", "sbp-line") if "series-cuff" in _classes(e)]
    wearable_sbp = [e for e in _with_class(root, "polyline", "sbp-line") if "series-wearable" in _classes(e)]
    assert len(cuff_sbp) == len(wearable_sbp) == 1
    assert len(cuff_sbp[0].get("points", "").split()) == 2  # the two cuff readings only
    assert len(wearable_sbp[0].get("points", "").split()) == 3  # two PPG and one ECG
    assert wearable_sbp[0].get("stroke-dasharray") and not cuff_sbp[0].get("stroke-dasharray")
    # Typed-in readings are not joined; every reading group sits in its series' group, which a page can hide.
    assert not [e for e in root.iter(f"{{{NS['svg']}}}polyline") if "series-manual" in _classes(e)]
    groups = {g.get("data-series"): g for g in _with_class(root, "g", "readings")}
    assert set(groups) == {"cuff", "wearable", "manual"}
    assert len(_with_class(groups["wearable"], "g", "reading")) == 3


def test_systolic_and_diastolic_use_distinct_colours() -> None:
    root = _parse(_bp(_points()))
    (sbp_line, _) = _with_class(root, "polyline", "sbp-line")
    (dbp_line, _) = _with_class(root, "polyline", "dbp-line")
    assert sbp_line.get("stroke") != dbp_line.get("stroke")


def test_the_target_is_a_band_from_the_low_line_to_the_target_for_each_measure() -> None:
    root = _parse(_bp(_points()))
    (sbp_band,) = _with_class(root, "rect", "band-sbp")
    (sbp_target,) = _with_class(root, "line", "target-sbp")
    (low_sbp,) = _with_class(root, "line", "low-sbp")
    top, height = float(sbp_band.get("y", "nan")), float(sbp_band.get("height", "nan"))
    assert top == pytest.approx(float(sbp_target.get("y1", "nan")), abs=0.1)
    assert top + height == pytest.approx(float(low_sbp.get("y1", "nan")), abs=0.1)
    assert _with_class(root, "rect", "band-dbp")


def test_the_proposal_is_marked_where_it_was_made_even_after_the_last_reading() -> None:
    points = _points()
    made = points[-1].taken_at + timedelta(days=2)
    root = _parse(
        bp_trend_svg(points, target_sbp=130, target_dbp=80, thresholds=POLICY, proposal=(made, "proposed: increase"))
    )
    (marker,) = _with_class(root, "g", "proposal-marker")
    line = marker.find("svg:line", NS)
    assert line is not None and line.get("x1") == line.get("x2")
    last_x = max(float(c.get("cx", "nan")) for c in root.iter(f"{{{NS['svg']}}}circle") if "sbp" in _classes(c))
    assert float(line.get("x1", "nan")) > last_x  # the range was extended to show it
    assert "proposed: increase" in _all_text(root)
    assert "Proposal made" in _all_text(root)


def test_bp_chart_labels_target_lines_with_target_numbers() -> None:
    root = _parse(bp_trend_svg(_points(), target_sbp=135, target_dbp=85, thresholds=POLICY))
    text = _all_text(root)
    assert "SBP target 135" in text
    assert "DBP target 85" in text
    (sbp_target,) = _with_class(root, "line", "target-sbp")
    (dbp_target,) = _with_class(root, "line", "target-dbp")
    assert sbp_target.get("stroke-dasharray")
    assert dbp_target.get("stroke-dasharray")
    # Higher pressure is drawn higher up (smaller y).
    assert float(sbp_target.get("y1", "0")) < float(dbp_target.get("y1", "0"))


def test_bp_chart_draws_dashed_red_crisis_lines_at_the_policys_thresholds() -> None:
    root = _parse(_bp(_points()))
    (crisis_sbp,) = _with_class(root, "line", "crisis-sbp")
    (crisis_dbp,) = _with_class(root, "line", "crisis-dbp")
    for crisis in (crisis_sbp, crisis_dbp):
        assert crisis.get("stroke-dasharray")
        assert crisis.get("stroke", "").upper().startswith("#B")  # red
    assert "crisis SBP 180" in _all_text(root)
    assert "crisis DBP 120" in _all_text(root)
    (sbp_target,) = _with_class(root, "line", "target-sbp")
    assert float(crisis_sbp.get("y1", "0")) < float(sbp_target.get("y1", "0"))


def test_bp_chart_draws_the_low_pressure_lines_and_follows_a_changed_policy() -> None:
    stricter = BPThresholds(crisis_sbp=170, crisis_dbp=110, hypotension_sbp=95, hypotension_dbp=65)
    root = _parse(bp_trend_svg(_points(), target_sbp=130, target_dbp=80, thresholds=stricter))
    text = _all_text(root)
    for label in ("crisis SBP 170", "crisis DBP 110", "low SBP 95", "low DBP 65"):
        assert label in text, label
    assert "crisis SBP 180" not in text
    (low_sbp,) = _with_class(root, "line", "low-sbp")
    (crisis_sbp,) = _with_class(root, "line", "crisis-sbp")
    assert float(low_sbp.get("y1", "0")) > float(crisis_sbp.get("y1", "0"))  # lower pressure, lower down
    assert low_sbp.get("stroke-dasharray") != crisis_sbp.get("stroke-dasharray")  # told apart without colour


def test_bp_y_axis_spans_at_least_60_to_180_in_steps_of_20() -> None:
    root = _parse(_bp([BPPoint(START, 120, 75, "cuff")]))
    (axis,) = _with_class(root, "g", "y-axis")
    labels = [t.text for t in axis.findall("svg:text", NS) if t.text != "mmHg"]
    assert labels == [str(v) for v in range(60, 181, 20)]


def test_bp_y_axis_extends_to_cover_extreme_readings() -> None:
    root = _parse(_bp([BPPoint(START, 214, 42, "manual")]))
    (axis,) = _with_class(root, "g", "y-axis")
    values = [int(t.text or 0) for t in axis.findall("svg:text", NS) if t.text != "mmHg"]
    assert min(values) <= 42 - 5
    assert max(values) >= 214 + 5


def test_bp_x_axis_has_a_handful_of_date_ticks() -> None:
    points = [BPPoint(START + timedelta(days=d), 140, 85, "cuff") for d in range(30)]
    root = _parse(_bp(points))
    (axis,) = _with_class(root, "g", "x-axis")
    labels = [t.text or "" for t in axis.findall("svg:text", NS)]
    assert 3 <= len(labels) <= 7
    assert all(len(label) == 6 and label[2] == " " for label in labels)  # "03 Nov"
    assert labels[0] in {"03 Nov", "04 Nov"}


def test_bp_x_axis_for_a_single_reading_still_names_a_day() -> None:
    root = _parse(_bp([BPPoint(START, 140, 85, "cuff")]))
    (axis,) = _with_class(root, "g", "x-axis")
    labels = [t.text or "" for t in axis.findall("svg:text", NS)]
    assert 2 <= len(labels) <= 7
    assert any("Nov" in label for label in labels)


def test_bp_markers_draw_labelled_vertical_lines_inside_range_only() -> None:
    markers = [
        (START + timedelta(days=2), "step 2→3"),
        (START - timedelta(days=40), "long ago"),
    ]
    root = _parse(_bp(_points(), markers=markers))
    groups = _with_class(root, "g", "marker")
    assert len(groups) == 1
    line = groups[0].find("svg:line", NS)
    assert line is not None
    assert line.get("x1") == line.get("x2")
    assert "step 2→3" in _all_text(root)
    assert "long ago" not in _all_text(root)


def test_bp_readings_are_plotted_in_time_order_whatever_the_input_order() -> None:
    points = [p for p in _points() if p.source != "manual"]
    root = _parse(_bp(list(reversed(points))))
    for series in _with_class(root, "g", "readings"):
        xs = [float(_child(g, "circle").get("cx", "nan")) for g in _with_class(series, "g", "reading")]
        assert xs == sorted(xs)
    all_xs = {float(c.get("cx", "nan")) for c in root.iter(f"{{{NS['svg']}}}circle") if "sbp" in _classes(c)}
    assert len(all_xs) == len(points)


def test_bp_legend_explains_hollow_points_only_when_ppg_present() -> None:
    with_ppg = _all_text(_parse(_bp(_points())))
    without = _all_text(_parse(_bp([BPPoint(START, 140, 85, "cuff")])))
    assert "Systolic" in with_ppg
    assert "Diastolic" in with_ppg
    assert "PPG" in with_ppg
    assert "PPG" not in without


# --------------------------------------------------------------------------- #
# Factor bars
# --------------------------------------------------------------------------- #


def test_positive_and_negative_factor_bars_go_to_opposite_sides_of_zero() -> None:
    root = _parse(factor_bars_svg([("a", 0.42), ("b", -0.31), ("c", 0.05), ("d", -1.5)]))
    (axis,) = _with_class(root, "line", "zero-axis")
    zero_x = float(axis.get("x1", "nan"))
    assert axis.get("x1") == axis.get("x2")
    positives = _with_class(root, "rect", "bar-pos")
    negatives = _with_class(root, "rect", "bar-neg")
    assert len(positives) == 2
    assert len(negatives) == 2
    for bar in positives:
        assert float(bar.get("x", "nan")) == pytest.approx(zero_x, abs=0.1)
        assert float(bar.get("width", "0")) > 0
    for bar in negatives:
        x, w = float(bar.get("x", "nan")), float(bar.get("width", "0"))
        assert w > 0
        assert x + w == pytest.approx(zero_x, abs=0.1)
        assert x < zero_x
    assert positives[0].get("fill") != negatives[0].get("fill")


def test_factor_bar_lengths_are_proportional_to_magnitude() -> None:
    root = _parse(factor_bars_svg([("big", -0.8), ("small", 0.2)]))
    (neg,) = _with_class(root, "rect", "bar-neg")
    (pos,) = _with_class(root, "rect", "bar-pos")
    ratio = float(neg.get("width", "0")) / float(pos.get("width", "1"))
    assert ratio == pytest.approx(4.0, rel=0.02)


def test_factor_values_are_printed_signed_with_two_decimals() -> None:
    root = _parse(factor_bars_svg([("a", 0.4242), ("b", -0.3117), ("c", 0.0), ("d", 2)]))
    values = [t.text for t in _with_class(root, "text", "value")]
    assert values == ["+0.42", "-0.31", "0.00", "+2.00"]


def test_factor_labels_are_on_the_left_of_the_zero_axis() -> None:
    root = _parse(factor_bars_svg([("Mean home SBP", 0.3), ("Adherence", -0.3)]))
    (axis,) = _with_class(root, "line", "zero-axis")
    zero_x = float(axis.get("x1", "nan"))
    labels = _with_class(root, "text", "label")
    assert [t.text for t in labels] == ["Mean home SBP", "Adherence"]
    assert all(float(t.get("x", "nan")) < zero_x for t in labels)


def test_non_finite_factor_values_render_as_not_available() -> None:
    root = _parse(factor_bars_svg([("a", float("nan")), ("b", 0.5)]))
    values = [t.text for t in _with_class(root, "text", "value")]
    assert values == ["n/a", "+0.50"]
    assert len(_with_class(root, "rect", "bar-pos")) == 1


def test_long_factor_labels_are_truncated_but_kept_in_tooltip() -> None:
    label = "A remarkably long engineered feature name that would overflow"
    root = _parse(factor_bars_svg([(label, 0.3)]))
    (shown,) = _with_class(root, "text", "label")
    assert shown.text is not None
    assert shown.text.endswith("\u2026")
    assert len(shown.text) < len(label)
    (row,) = _with_class(root, "g", "factor")
    tooltip = row.find("svg:title", NS)
    assert tooltip is not None
    assert tooltip.text == f"{label}: +0.30"


# --------------------------------------------------------------------------- #
# Probability bars
# --------------------------------------------------------------------------- #


def test_probability_bars_print_percentages_matching_inputs() -> None:
    probs = {"decrease": 0.12, "maintain": 0.25, "increase": 0.63}
    root = _parse(probability_bars_svg(probs))
    labels = [t.text for t in _with_class(root, "text", "label")]
    percentages = [t.text for t in _with_class(root, "text", "pct")]
    assert labels == ["decrease", "maintain", "increase"]
    assert percentages == ["12%", "25%", "63%"]


def test_probability_bar_widths_are_proportional_to_probability() -> None:
    root = _parse(probability_bars_svg({"decrease": 0.2, "maintain": 0.8}))
    tracks = _with_class(root, "rect", "track")
    bars = _with_class(root, "rect", "prob")
    full = float(tracks[0].get("width", "nan"))
    widths = [float(b.get("width", "nan")) / full for b in bars]
    assert widths == pytest.approx([0.2, 0.8], abs=0.01)


def test_most_probable_class_is_emphasised() -> None:
    root = _parse(probability_bars_svg({"decrease": 0.1, "maintain": 0.3, "increase": 0.6}))
    rows = [g for g in root.iter(f"{{{NS['svg']}}}g") if "prob-row" in _classes(g)]
    top = [g for g in rows if "top" in _classes(g)]
    assert len(rows) == 3
    assert len(top) == 1
    label = top[0].find("svg:text", NS)
    assert label is not None
    assert label.text == "increase"
    assert label.get("font-weight") == "700"


def test_tiny_and_near_certain_probabilities_are_not_rounded_to_0_or_100() -> None:
    root = _parse(probability_bars_svg({"a": 0.001, "b": 0.998, "c": 0.0, "d": 1.0}))
    assert [t.text for t in _with_class(root, "text", "pct")] == [
        "<1%",
        ">99%",
        "0%",
        "100%",
    ]


def test_out_of_range_probabilities_are_clamped() -> None:
    root = _parse(probability_bars_svg({"a": 1.7, "b": -0.2, "c": float("nan")}))
    assert [t.text for t in _with_class(root, "text", "pct")] == ["100%", "0%", "0%"]
