"""The escaping-mass section of the drifting results: checked against what far-away mass must do to each quantity."""

from __future__ import annotations

import pytest

from framework_plugins.drifting.analysis import ESCAPED, escaping_mass, escaping_mass_section


def test_far_mass_drops_out_of_the_overlap_in_proportion_to_its_weight():
    """Phi(q) = mean k(x, y): the escaped 30% contributes k ~ 0 at R = 1000, so the ratio falls to 0.7 of R = 0's."""
    rows = {r: (field, ratio) for r, field, ratio in escaping_mass(radii=(0.0, 1000.0), n=1000)}
    assert rows[0.0][1] == pytest.approx(1.0, abs=0.05)  # q_0 and p are the same law
    assert rows[1000.0][1] == pytest.approx((1 - ESCAPED) * rows[0.0][1], rel=0.02)


def test_section_writes_its_table_and_figure(tmp_path):
    text = escaping_mass_section(tmp_path, {}, {}, "x/")
    assert text.count("\n| ") == 8 and "](x/escaping_mass.png)" in text
    assert (tmp_path / "escaping_mass.png").stat().st_size > 0
