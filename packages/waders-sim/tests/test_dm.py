"""waders dm: dark-matter recoil events drawn from a rate table, simulated into images (truth tests)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import chi2, kstest, norm

from waders.core.errors import ConfigError, InputFileError
from waders.sim.darkmatter import RateSpectrum, dm_hits, generate_dm_events, read_rate_spectrum

ENERGIES = np.array([5.0, 10.0, 20.0, 40.0])  # eV
RATES = np.array([10.0, 5.0, 2.0, 1.0])  # events/eV/kg/year


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=300)


def chi2_pvalue(observed: np.ndarray, expected: np.ndarray, min_expected: float = 5.0) -> float:
    """Pearson chi2 p-value, neighbouring bins merged until each expects >= min_expected entries."""
    obs_groups, exp_groups = [], []
    o_acc = e_acc = 0.0
    for o, e in zip(observed, expected, strict=True):
        o_acc, e_acc = o_acc + o, e_acc + e
        if e_acc >= min_expected:
            obs_groups.append(o_acc)
            exp_groups.append(e_acc)
            o_acc = e_acc = 0.0
    if exp_groups:
        obs_groups[-1] += o_acc
        exp_groups[-1] += e_acc
    o, e = np.array(obs_groups), np.array(exp_groups)
    if o.size < 2:
        return 1.0
    return float(chi2.sf(float(((o - e) ** 2 / e).sum()), o.size - 1))


def test_energies_follow_the_rate_and_positions_are_uniform():
    spectrum = RateSpectrum(ENERGIES, RATES)
    n = 20_000
    box = (4.5, 3.0, 0.675)
    events = generate_dm_events(spectrum, n, box=box, seed=5)
    assert events["event"].tolist() == list(range(n))
    counts = np.array([(events["energy"] == e).sum() for e in ENERGIES])
    assert counts.sum() == n
    assert chi2_pvalue(counts, spectrum.expected_counts(n)) > 1e-3  # multinomial within Poisson errors
    for axis, extent in zip("xyz", box, strict=True):
        assert kstest(events[axis] / extent, "uniform").pvalue > 1e-3
    again = generate_dm_events(spectrum, n, box=box, seed=5)
    assert all(np.array_equal(events[k], again[k]) for k in events)  # reproducible from the seed
    each = generate_dm_events(spectrum, 3, box=box, seed=1, repeat_each=True)  # dmSKImg2
    assert each["energy"].tolist() == np.repeat(ENERGIES, 3).tolist()
    hits = dm_hits(events)
    assert len(hits) == n and hits.n_hits.tolist() == [1] * n


def test_bad_rate_tables(tmp_path):
    with pytest.raises(ConfigError, match="rates >= 0"):
        RateSpectrum(np.array([1.0, 2.0]), np.array([-1.0, 2.0]))
    (tmp_path / "bad.csv").write_text("energy,rate\n1,2\n")
    with pytest.raises(InputFileError, match="'energies' and 'rates'"):
        read_rate_spectrum(tmp_path / "bad.csv")
    (tmp_path / "text.csv").write_text("energies,rates\n1,abc\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_rate_spectrum(tmp_path / "text.csv")
    with pytest.raises(ConfigError, match=">= 1"):
        generate_dm_events(RateSpectrum(ENERGIES, RATES), 0, box=(1, 1, 1))


def pair_probabilities(mean: float, fano: float, n_max: int) -> np.ndarray:
    """P(n) of round(Normal(mean, sqrt(F mean))) clipped at 0 (Diffusion's gauss model)."""
    s = np.sqrt(fano * mean)
    edges = (np.arange(n_max + 2) - 0.5 - mean) / s
    p = np.diff(norm.cdf(edges))
    p[0] = norm.cdf(edges[1])  # negative draws give 0 pairs
    p[-1] += norm.sf(edges[-1])
    return p


@pytest.mark.slow
def test_dm_command_events_electron_spectrum_and_positions(tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text("energies,rates\n" + "".join(f"{e},{r}\n" for e, r in zip(ENERGIES, RATES, strict=True)))
    n, shape, pitch = 2000, (200, 300), 0.015
    out = tmp_path / "out"
    result = waders(
        "dm", str(rates), "--nevts", str(n), "--seed", "3", "-o", str(out), "--events-per-image", "500",
        "--set", f"CF.ccd_shape={list(shape)}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with (out / "rates_dm_events.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == n  # the number of generated events
    energy = np.array([float(r["energy_eV"]) for r in table])
    x, y = (np.array([float(r[k]) for r in table]) for k in ("x_mm", "y_mm"))
    spectrum = RateSpectrum(ENERGIES, RATES)
    counts = np.array([(energy == e).sum() for e in ENERGIES])
    assert chi2_pvalue(counts, spectrum.expected_counts(n)) > 1e-3
    assert kstest(x / (shape[1] * pitch), "uniform").pvalue > 1e-3
    assert kstest(y / (shape[0] * pitch), "uniform").pvalue > 1e-3
    truths = [json.loads(p.read_text()) for p in sorted(out.glob("*.truth.json"))]
    assert len(truths) == n // 500 and len(list(out.glob("rates_dm_g4_image_*.fits"))) == n // 500
    e2eV = truths[0]["e2eV"]
    charge = np.zeros(n)
    outside = np.zeros(n, dtype=bool)
    row = np.full(n, np.nan)
    col = np.full(n, np.nan)
    for truth in truths:
        for ev in truth["events"]:
            i = ev["event"]
            charge[i], outside[i] = ev["charge_e"], ev["npix_outside"] > 0
            row[i] = ev["row"] if ev["row"] is not None else np.nan
            col[i] = ev["col"] if ev["col"] is not None else np.nan
    # events appear where they were generated (within the diffusion spread, at most ~2 pixels)
    placed = np.isfinite(row)
    assert np.all(np.abs(row[placed] - (y[placed] / pitch + 0.5)) < 6)
    assert np.all(np.abs(col[placed] - (x[placed] / pitch + 0.5)) < 6)
    # electrons per event: round(Normal(E/e2eV, sqrt(F E/e2eV))), per energy, within multinomial errors
    far = (x > 10 * pitch) & (x < (shape[1] - 10) * pitch) & (y > 10 * pitch) & (y < (shape[0] - 10) * pitch)
    assert not outside[far].any()
    for e in ENERGIES:
        sel = far & (energy == e)
        k = charge[sel].astype(int)
        n_max = int(e / e2eV + 8 * np.sqrt(0.129 * e / e2eV)) + 2
        expected = sel.sum() * pair_probabilities(e / e2eV, 0.129, n_max)
        observed = np.bincount(np.minimum(k, n_max), minlength=n_max + 1)
        assert chi2_pvalue(observed, expected) > 1e-3, (e, observed, expected.round(1))
        assert k.mean() == pytest.approx(e / e2eV, abs=5 * np.sqrt(0.129 * e / e2eV / sel.sum()) + 0.05)


def test_dm_command_bad_input_is_one_line(tmp_path):
    (tmp_path / "bad.csv").write_text("energy,rate\n1,2\n")
    result = waders("dm", str(tmp_path / "bad.csv"), "--nevts", "10", "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_dm_events_pasted_into_a_blank_image(tmp_path):
    from astropy.io import fits

    rates = tmp_path / "rates.csv"
    rates.write_text("energies,rates\n" + "".join(f"{e},{r}\n" for e, r in zip(ENERGIES, RATES, strict=True)))
    blank = np.random.default_rng(0).normal(1000.0, 2.0, (200, 300)).astype(np.float32)
    fits.PrimaryHDU(blank).writeto(tmp_path / "blank.fits")
    out = tmp_path / "out"
    result = waders(
        "dm", str(rates), "--nevts", "100", "-o", str(out), "--blank", str(tmp_path / "blank.fits"),
        "--events-per-image", "50", "--set", "CF.ccd_shape=[200,300]", "--set", "PasteClusterProcess.calibration=10",
        "--set", "PasteClusterProcess.signal=charge",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pasted = sorted(out.glob("waders_sim_blank_*.fits"))
    assert len(pasted) == 2  # 100 events (less the ones without charge), 50 per blank
    electrons = 0.0
    for path in pasted:
        with fits.open(path) as hdul:
            diff = hdul[0].data - blank
            ids = hdul["MCT_ID"].data
            assert np.all(np.abs(diff[ids == 0]) < 1e-3)  # only the pasted pixels change
            electrons += diff.sum() / 10.0
    energy = np.array(
        [float(r["energy_eV"]) for r in csv.DictReader((out / "rates_dm_events.csv").read_text().splitlines())]
    )
    mean = energy.sum() / 3.77
    sigma = np.sqrt(0.129 * mean + energy.size / 12.0)  # Fano and rounding
    assert electrons == pytest.approx(mean, abs=5 * sigma + 10)  # + charge of events cut at the CCD edge


def test_dm_with_a_pysimdamicm_configuration_gets_images(tmp_path):
    from waders.data import PYSIMDAMICM_CONFIGS, path

    config = path(PYSIMDAMICM_CONFIGS) / "psimulCCDimg_config_file.json"  # no image process in it
    rates = tmp_path / "rates.csv"
    rates.write_text("energies,rates\n10,1\n")
    out = tmp_path / "out"
    result = waders(
        "dm", str(rates), "--nevts", "30", "--json", str(config), "--set", "CF.ccd_shape=[100,120]",
        "--events-per-image", "10", "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    truths = [json.loads(p.read_text()) for p in sorted(out.glob("*.truth.json"))]
    assert [t["n_events"] for t in truths] == [10, 10, 10]
    assert sum(len(t["events"]) for t in truths) == 30
    assert len(list(out.glob("waders_dm_*.root"))) == 1


def test_dm_clusters_carry_the_generated_deposit(tmp_path):
    """Edep_MCT, posx/y/z_MCT (dmSKImg's truth) are the generated event of every cluster."""
    from waders.io.root import read_clusters

    rates = tmp_path / "rates.csv"
    rates.write_text("energies,rates\n800,1\n2000,1\n")
    out = tmp_path / "out"
    pitch = 0.015
    result = waders(
        "dm", str(rates), "--nevts", "60", "-o", str(out), "--set", "CF.ccd_shape=[200,300]", "--no-images",
        "--seed", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = {int(r["event"]): r for r in csv.DictReader((out / "rates_dm_events.csv").read_text().splitlines())}
    (root,) = out.glob("waders_dm_*.root")
    entries = read_clusters(root).tolist()
    assert entries
    for entry in entries:
        generated = table[entry["event"]]
        for cluster in entry["clusters"]:
            assert cluster["N_MCT"] == 1
            (mct,) = cluster["MCT"]
            assert mct["Edep_MCT"] == pytest.approx(float(generated["energy_eV"]) / 1000.0)  # keV
            for axis in "xyz":
                assert mct[f"pos{axis}_MCT"] == pytest.approx(float(generated[f"{axis}_mm"]), rel=1e-6)
            # the cluster sits where the deposit was (1-based pixel centre, within the diffusion spread)
            assert cluster["PosX"] == pytest.approx(mct["posx_MCT"] / pitch + 0.5, abs=3)
            assert cluster["PosY"] == pytest.approx(mct["posy_MCT"] / pitch + 0.5, abs=3)
            assert cluster["PosZ"] == pytest.approx(mct["posz_MCT"], abs=1e-9)  # one deposit: its depth
