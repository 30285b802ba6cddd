"""CrossTalkProcess reads the std_pattern companion variance files of averaged ACM images (B.12.1)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from waders.ana.studies.companion import companion_path, companion_std
from waders.ana.studies.crosstalk import CrossTalkProcess
from waders.core import RunContext
from waders.core.errors import DataError, InputFileError
from waders.io import read_image

SHAPE = (60, 80)
N_AMP = 4


def write_acm_pair(tmp_path, *, seed=0, with_companion=True):
    """An averaged 4-extension ACM image and its variance companion with known common outliers.

    Skip std of ordinary pixels: 2.0 +- 0.1 ADU (variance ~4); 15 pixels have std 4.0 in every
    amplifier (crosstalk), 15 others only in one amplifier each.
    """
    rng = np.random.default_rng(seed)
    std = rng.normal(2.0, 0.1, (N_AMP, *SHAPE))
    flat = rng.choice(50 * 60, 15 + 15 * N_AMP, replace=False)  # inside the active region (rows 5-54, cols 10-69)
    r, c = 5 + flat // 60, 10 + flat % 60
    std[:, r[:15], c[:15]] = 4.0
    for k in range(N_AMP):
        pick = slice(15 + 15 * k, 30 + 15 * k)
        std[k, r[pick], c[pick]] = 4.0
    average = tmp_path / "image_lta_avg_skips_contrun_7.fits"
    mean = rng.normal(0.0, 0.5, (N_AMP, *SHAPE))
    primary = fits.PrimaryHDU()
    fits.HDUList([primary] + [fits.ImageHDU(m.astype(np.float32)) for m in mean]).writeto(average)
    if with_companion:
        variance = tmp_path / "image_lta_var_skips_contrun_7.fits"
        fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU((s**2).astype(np.float32)) for s in std]).writeto(variance)
    truth = np.zeros(SHAPE, dtype=bool)
    truth[r[:15], c[:15]] = True
    return average, std, truth


def test_companion_name_and_std_are_the_square_root_of_the_variance(tmp_path):
    average, std, _ = write_acm_pair(tmp_path)
    assert (
        companion_path(average, ["avg_skips_contrun", "var_skips_contrun"]).name == "image_lta_var_skips_contrun_7.fits"
    )
    image = read_image(average)
    assert len(image.amplifiers) == N_AMP
    found = companion_std(image, ["avg_skips_contrun", "var_skips_contrun"])
    for k, name in enumerate(image.amplifiers):
        np.testing.assert_allclose(found[name], std[k], rtol=1e-6)  # float32 variance -> std


def test_flag_of_averaged_acm_image_uses_the_companion(tmp_path):
    average, _, truth = write_acm_pair(tmp_path)
    image = read_image(average)
    rows, cols = image["EXT1"].geometry.region("active")
    assert rows.start <= 5 and rows.stop >= 55 and cols.start <= 10 and cols.stop >= 70
    assert not any(a.has("std_compressed") for a in image.amplifiers.values())
    CrossTalkProcess(alpha_matrix=False).run(image, RunContext(seed=1))
    for amp in image.amplifiers.values():
        assert np.array_equal(amp.get("xtalk").astype(bool), truth)  # only the common outliers
        # 15 common + 15 own outliers; 5 trimmed sigmas ~ 3.9 sigma of the core: ~0.5 false outliers expected
        assert 30 <= amp.results["CrossTalkProcess"]["n_std_outliers"] <= 33
        assert amp.results["CrossTalkProcess"]["std_trimmed_mean"] == pytest.approx(2.0, abs=0.01)
    result = image.results["CrossTalkProcess"]
    assert result["n_xtalk"] == 15 and result["std_source"] == "image_lta_var_skips_contrun_7.fits"


def test_missing_or_unmatched_companion_is_a_clear_error(tmp_path):
    average, *_ = write_acm_pair(tmp_path, with_companion=False)
    image = read_image(average)
    with pytest.raises(InputFileError, match="var_skips_contrun_7.fits of .* does not exist"):
        CrossTalkProcess(alpha_matrix=False).run(image, RunContext(seed=1))
    with pytest.raises(DataError, match="std_compressed.*does not contain 'avg_other'"):
        CrossTalkProcess(alpha_matrix=False, std_pattern=["avg_other", "var_other"]).run(image, RunContext(seed=1))
    small = tmp_path / "small_var_skips_contrun_1.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((5, 5), dtype=np.float32))]).writeto(small)
    (tmp_path / "small_avg_skips_contrun_1.fits").write_bytes(average.read_bytes())
    with pytest.raises(InputFileError, match="does not hold"):
        CrossTalkProcess(alpha_matrix=False).run(
            read_image(tmp_path / "small_avg_skips_contrun_1.fits"), RunContext(seed=1)
        )
