"""``process_config``: ADC2e (mean gain of the amplifiers), ADC2eV = e2eV / ADC2e and img_exp_time."""

from __future__ import annotations

import pytest

from waders.ana.calibration import CalibrationProcess
from waders.ana.compress import CompressSkipperProcess
from waders.ana.constants import analysis_constants, mean_gain
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.core import Detector
from waders.io.synthetic import make_raw_image


def test_adc2e_is_the_mean_gain_of_the_amplifiers(run_chain):
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=30, ncols=40, nskips=4, seed=2)
    assert mean_gain(image) is None
    detector = Detector.for_domain("ana")
    assert analysis_constants(image, detector) == {"img_exp_time": pytest.approx(8.64e13)}
    run_chain(
        image,
        CompressSkipperProcess(),
        PedestalSubtractionProcess(),
        CalibrationProcess(gain={"L": 8.0, "U": 12.0}),
    )
    constants = analysis_constants(image, detector)
    assert constants["ADC2e"] == pytest.approx(10.0)
    assert constants["ADC2eV"] == pytest.approx(detector.e2eV / 10.0)
    assert constants["img_exp_time"] == pytest.approx(detector.img_exp_time)
