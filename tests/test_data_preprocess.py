import numpy as np
import pytest
from data_fixtures import STANDARD, ecg_like, manifest

from ecgbench.data.preprocess import SignalError, check_signal, crop, pad, preprocess, resample, scale, standard_leads
from ecgbench.data.registry import get_manifest

SIGNAL = get_manifest("cpsc2018").signal


@pytest.mark.parametrize("rate_in", [500, 400, 1000, 250])
def test_resampling_a_known_sine_keeps_its_amplitude_and_phase(rate_in):
    t_in = np.arange(10 * rate_in) / rate_in
    sine = np.sin(2 * np.pi * 5 * t_in + 0.3)[:, None] * [1.0, -2.0]
    out = resample(sine, rate_in, 100)
    t_out = np.arange(1000) / 100
    expected = np.sin(2 * np.pi * 5 * t_out + 0.3)[:, None] * [1.0, -2.0]
    assert out.shape == (1000, 2)
    np.testing.assert_allclose(out[20:-20], expected[20:-20], atol=5e-3)  # FIR passband ripple < 0.25 %
    np.testing.assert_allclose(out, expected, atol=0.1)  # edges within 5 % of the amplitude (padtype="line")


def test_resampling_filters_what_plain_decimation_would_alias():
    t = np.arange(5000) / 500
    tone = np.sin(2 * np.pi * 70 * t)[:, None]  # above 50 Hz: not representable at 100 Hz
    decimated = tone[::5]  # the paper's downsampling: aliases to a 30 Hz tone of full amplitude
    assert np.abs(decimated).max() > 0.9
    assert np.abs(resample(tone, 500, 100)[20:-20]).max() < 0.02


def test_a_100_hz_record_is_not_touched():
    x = np.random.default_rng(0).normal(size=(1000, 12))
    assert resample(x, 100, 100) is x


def test_crop_and_pad_rules():
    x = np.arange(10.0)[:, None]
    assert crop(x, 4, "start")[:, 0].tolist() == [0, 1, 2, 3]
    assert crop(x, 4, "centre")[:, 0].tolist() == [3, 4, 5, 6]
    assert pad(x[:3], 6, "end")[:, 0].tolist() == [0, 1, 2, 0, 0, 0]
    assert pad(x[1:4], 6, "both")[:, 0].tolist() == [0, 1, 2, 3, 0, 0]


def test_minmax_scales_each_record_to_minus_one_one_and_padding_stays_zero():
    x = ecg_like(6, 500)
    rules = manifest("cpsc2018", preprocess={"scaling": "minmax"}).preprocess
    out = preprocess(x, 500, STANDARD, SIGNAL, rules)
    assert out.shape == (1000, 12) and out.dtype == np.float32
    assert out[:600].min() == pytest.approx(-1, abs=1e-6) and out[:600].max() == pytest.approx(1, abs=1e-6)
    assert not out[601:].any()
    assert not scale(np.ones((5, 2)), "minmax").any()
    np.testing.assert_array_equal(scale(x, "none"), x)


def test_longer_records_are_cropped_and_shorter_ones_padded_to_ten_seconds():
    rules = get_manifest("cpsc2018").preprocess
    long = ecg_like(60, 500)
    out = preprocess(long, 500, STANDARD, SIGNAL, rules)
    np.testing.assert_allclose(out[20:980], resample(long[:5000], 500, 100)[20:980], atol=1e-4)
    short = preprocess(ecg_like(6, 500), 500, STANDARD, SIGNAL, rules)
    assert short[:600].any() and not short[600:].any()


def test_leads_are_found_by_name_whatever_their_case_and_order():
    x = np.arange(15)[None, :] * np.ones((5, 1))
    names = ("v6", "V5", "v4", "v3", "v2", "v1", "AVF", "avl", "aVR", "III", "ii", "I", "vx", "vy", "vz")
    ptb_signal = get_manifest("ptb").signal
    out = standard_leads(x, names, ptb_signal)
    assert out[0].tolist() == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]


@pytest.mark.parametrize("mutate, message", [
    (lambda x, r, c: (np.where(np.arange(len(x))[:, None] == 7, np.nan, x), r, c), "NaN"),
    (lambda x, r, c: (x, 250.0, c), "unexpected sampling rate 250 Hz"),
    (lambda x, r, c: (x, r, c[:11] + ("X1",)), "unexpected lead set"),
    (lambda x, r, c: (x[:, :11], r, c[:11]), r"missing \['V6'\]"),
    (lambda x, r, c: (x[:1000], r, c), "lasts 2 s"),
    (lambda x, r, c: (x / 2000.0, r, c), "implausible amplitude"),
])
def test_a_signal_that_is_not_as_the_manifest_says_is_an_error(mutate, message):
    x, rate, channels = mutate(ecg_like(10, 500), 500.0, STANDARD)
    with pytest.raises(SignalError, match=message):
        preprocess(x, rate, channels, SIGNAL, get_manifest("cpsc2018").preprocess)


def test_check_signal_accepts_a_plausible_record():
    check_signal(ecg_like(10, 500), 500.0, SIGNAL)
