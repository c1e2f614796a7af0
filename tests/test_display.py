"""ReliabilityDisplay: the reliability diagram drawn on a matplotlib Axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import relcal  # noqa: E402
from relcal.display import ReliabilityDisplay  # noqa: E402
from relcal.errors import InputError  # noqa: E402
from relcal.synth import make_logits  # noqa: E402


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_logits(3000, 6, seed=17)


@pytest.fixture(autouse=True)
def no_figures_left():
    yield
    plt.close("all")


def bar_xy(container) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    patches = container.patches
    return (
        np.array([p.get_x() for p in patches]),
        np.array([p.get_y() for p in patches]),
        np.array([p.get_height() for p in patches]),
    )


def test_bars_on_a_given_axes_are_the_bin_table(data) -> None:
    fig = Figure()
    ax = fig.subplots()
    before = plt.get_fignums()
    disp = ReliabilityDisplay.from_predictions(*data, n_bins=12, ax=ax, name="net")
    assert disp.ax_ is ax and disp.figure_ is fig and plt.get_fignums() == before
    table = relcal.reliability_table(*data, n_bins=12)
    filled = table.count > 0
    assert not filled.all()  # some empty bins, which get no accuracy bar
    x, y, height = bar_xy(disp.bars_)
    np.testing.assert_array_equal(x, table.edges[:-1][filled])
    np.testing.assert_array_equal(y, 0.0)
    np.testing.assert_allclose(height, table.accuracy[filled], rtol=0, atol=1e-15)
    _, gap_y, gap_h = bar_xy(disp.gap_bars_)
    np.testing.assert_allclose(gap_y + gap_h, table.mean_conf[filled], atol=1e-15)
    centres = (table.edges[:-1] + np.diff(table.edges) / 2)[filled]
    offsets = disp.points_.get_offsets()
    np.testing.assert_allclose(offsets[:, 0], centres, atol=1e-15)
    np.testing.assert_allclose(offsets[:, 1], table.mean_conf[filled], atol=1e-15)
    assert disp.line_ is None and disp.ax_counts_ is None
    assert ax.get_title() == "net" and ax.get_xlim() == (0.0, 1.0)


def test_line_data_is_accuracy_against_mean_confidence(data) -> None:
    ax = Figure().subplots()
    disp = ReliabilityDisplay.from_predictions(
        *data, binning="mass", ax=ax, style="line"
    )
    r = relcal.evaluate(*data, binning="mass")
    filled = r.table.count > 0
    np.testing.assert_array_equal(disp.line_.get_xdata(), r.table.mean_conf[filled])
    np.testing.assert_array_equal(disp.line_.get_ydata(), r.table.accuracy[filled])
    assert disp.line_.get_label() == f"model (ECE {r.ece:.3f})"
    assert disp.bars_ is None


def test_several_curves_share_one_axes(data) -> None:
    ax = Figure().subplots()
    logits, labels = data
    a = ReliabilityDisplay.from_predictions(
        logits, labels, ax=ax, style="line", name="a"
    )
    b = ReliabilityDisplay.from_predictions(
        logits / 2.5, labels, ax=ax, style="line", name="b"
    )
    labels_drawn = [line.get_label() for line in ax.get_lines()]
    assert labels_drawn.count("perfect calibration") == 1 and len(labels_drawn) == 3
    assert a.line_.get_color() != b.line_.get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()][1:] == [
        a.line_.get_label(),
        b.line_.get_label(),
    ]


def test_from_results_draws_what_from_predictions_draws(data) -> None:
    r = relcal.evaluate(*data, n_bins=10)
    one = ReliabilityDisplay.from_results(r, ax=Figure().subplots(), counts=True)
    two = ReliabilityDisplay.from_predictions(
        *data, n_bins=10, ax=Figure().subplots(), counts=True
    )
    for attr in ("bars_", "gap_bars_"):
        for u, v in zip(
            bar_xy(getattr(one, attr)), bar_xy(getattr(two, attr)), strict=True
        ):
            np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(one.points_.get_offsets(), two.points_.get_offsets())
    assert one.results is r and two.results.ece == r.ece


def test_count_strip_under_the_diagram(data) -> None:
    disp = ReliabilityDisplay.from_predictions(
        *data, ax=Figure().subplots(), counts=True
    )
    strip = disp.ax_counts_
    heights = np.array([p.get_height() for p in strip.patches])
    np.testing.assert_array_equal(heights, disp.table.count)
    assert (
        strip.get_xlabel() == "confidence (top-label)" and disp.ax_.get_xlabel() == ""
    )
    disp.figure_.draw_without_rendering()  # the axes locator places the strip
    assert strip.get_position().y1 <= disp.ax_.get_position().y0
    assert strip.get_shared_x_axes().joined(strip, disp.ax_)


def test_no_axes_makes_a_pyplot_figure(data) -> None:
    before = len(plt.get_fignums())
    disp = ReliabilityDisplay.from_predictions(*data)
    assert len(plt.get_fignums()) == before + 1
    assert disp.figure_ is plt.gcf() and disp.ax_ in disp.figure_.axes


def test_plot_again_on_other_axes_with_a_new_name(data) -> None:
    disp = ReliabilityDisplay.from_predictions(*data, ax=Figure().subplots())
    ax = Figure().subplots()
    assert disp.plot(ax, name="cost $5 <b>") is disp and disp.ax_ is ax
    assert ax.get_title() == r"cost \$5 <b>"  # literal text, no mathtext


def test_bad_arguments_name_the_parameter(data) -> None:
    with pytest.raises(InputError) as err:
        ReliabilityDisplay.from_predictions(*data, style="dots")
    assert str(err.value) == "style= must be 'bars' or 'line'. Got 'dots' instead"
    with pytest.raises(InputError) as err:
        ReliabilityDisplay.from_results({"ece": 0.1})
    assert str(err.value) == (
        "results= must be a relcal.Results (from relcal.evaluate). Got dict instead"
    )
    assert plt.get_fignums() == []  # nothing drawn


def test_positive_class_curve_of_two_classes() -> None:
    logits, labels = make_logits(2500, 2, seed=23)
    z = logits.astype(np.float64)
    p1 = 1 / (1 + np.exp(z[:, 0] - z[:, 1]))
    ax = Figure().subplots()
    disp = ReliabilityDisplay.from_predictions(
        p1, labels, n_bins=10, ax=ax, curve="positive"
    )
    # float64 reference: right-closed bins of P(class 1), 0 in the first
    edges = np.linspace(0, 1, 11)
    b = np.searchsorted(edges[1:-1], p1, side="left")
    count = np.bincount(b, minlength=10)
    filled = count > 0
    mean_p = np.bincount(b, weights=p1, minlength=10)[filled] / count[filled]
    freq = np.bincount(b, weights=labels == 1, minlength=10)[filled] / count[filled]
    np.testing.assert_allclose(disp.line_.get_xdata(), mean_p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(disp.line_.get_ydata(), freq, rtol=0, atol=1e-12)
    assert disp.bars_ is None and disp.curve == "positive"
    assert disp.table is disp.results.positive_table
    r = disp.results
    assert disp.line_.get_label() == f"model (P(1) ECE {r.positive_class_ece:.3f})"
    assert ax.get_xlabel() == "mean predicted P(class 1)"
    assert ax.get_ylabel() == "fraction of class 1 in bin"


def test_positive_class_curve_needs_two_classes_and_a_line(data) -> None:
    r = relcal.evaluate(*data)
    with pytest.raises(InputError) as err:
        ReliabilityDisplay.from_results(r, curve="positive")
    assert str(err.value) == "curve='positive' needs two classes. Got 6 instead"
    r2 = relcal.evaluate(*make_logits(100, 2, seed=1))
    with pytest.raises(InputError) as err:
        ReliabilityDisplay.from_results(r2, curve="positive", style="bars")
    assert str(err.value) == "curve='positive' is drawn as a line: give style='line'"
    with pytest.raises(InputError) as err:
        ReliabilityDisplay.from_results(r2, curve="pos")
    assert (
        str(err.value) == "curve= must be 'toplabel' or 'positive'. Got 'pos' instead"
    )
    assert plt.get_fignums() == []
