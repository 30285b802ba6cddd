from __future__ import annotations

import numpy as np
import pytest

from waders.ana.calibration import CalibrationProcess
from waders.core import AmplifierGeometry, SkipperImage
from waders.core.errors import ConfigError


def image_in_adu():
    geometries = {
        "CCD_A": AmplifierGeometry("CCD_A", 4, 5, aliases=("EXT1",)),
        "CCD_B": AmplifierGeometry("CCD_B", 4, 5, aliases=("EXT2",)),
    }
    data = {n: np.full((4, 5), 13.2) for n in geometries}
    return SkipperImage.from_arrays(data, geometries=geometries, product="mean_compressed_pedestal_subtracted")


def test_gain_per_amplifier_by_name_or_pysimdamicm_alias(run_chain):
    image = run_chain(image_in_adu(), CalibrationProcess(gain={"EXT1": 1.32, "CCD_B": 1.2}))
    assert np.allclose(image["CCD_A"].get("mean_compressed_pedestal_subtracted_e"), 10.0)
    assert np.allclose(image["CCD_B"].get("mean_compressed_pedestal_subtracted_e"), 11.0)
    assert image.header_cards["GAIN_CCD_A"][0] == pytest.approx(1.32)
    assert image["CCD_B"].results["CalibrationProcess"]["gain_source"] == "configuration"


def test_gain_from_the_dark_current_fit(run_chain):
    image = image_in_adu()
    image["CCD_A"].record("FitDarkCurrentProcess", gain_adu_per_e=1.1, valid=True)
    image["CCD_B"].record("FitDarkCurrentProcess", gain_adu_per_e=7.0, valid=False)  # failed fit: not used
    run_chain(image, CalibrationProcess(gain=1.2, from_dc_fit=True))
    assert np.allclose(image["CCD_A"].get("mean_compressed_pedestal_subtracted_e"), 12.0)
    assert image["CCD_A"].results["CalibrationProcess"]["gain_source"] == "dark-current fit"
    assert np.allclose(image["CCD_B"].get("mean_compressed_pedestal_subtracted_e"), 11.0)


def test_missing_amplifier_gain_is_an_error_not_a_gain_of_one(run_chain):
    with pytest.raises(ConfigError, match=r"no value for amplifier 'CCD_B' \(given for: EXT1\)"):
        run_chain(image_in_adu(), CalibrationProcess(gain={"EXT1": 1.32}))
