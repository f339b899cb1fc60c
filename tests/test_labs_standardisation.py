"""pneumo.data.labs.standardisation: the one way every model reads lab values."""
import numpy as np
import pytest

from pneumo.data.labs.standardisation import LabStandardisation
from pneumo.errors import LabError

KEYS = ("wbc", "crp", "never", "constant")
TRAIN = np.array([[1.0, np.nan, np.nan, 4.0],
                  [3.0, 5.0, np.nan, 4.0],
                  [5.0, 9.0, np.nan, 4.0]])


def test_fit_uses_observed_values_and_guards_degenerate_tests():
    s = LabStandardisation.fit(TRAIN, KEYS)
    assert s.mean.tolist() == [3.0, 7.0, 0.0, 4.0]
    assert s.sd[0] == pytest.approx(np.std([1, 3, 5])) and s.sd[1] == pytest.approx(2.0)
    assert s.sd[2] == 1.0 and s.sd[3] == 1.0        # never seen, and constant: finite z either way


def test_inputs_put_missing_at_the_train_mean_and_flag_it():
    s = LabStandardisation.fit(TRAIN, KEYS)
    z, missing = s.inputs([[5.0, np.nan, np.inf, 4.0]])
    assert z.dtype == np.float32 and missing.dtype == np.float32
    assert missing.tolist() == [[0.0, 1.0, 1.0, 0.0]]
    assert z[0, 1] == 0.0 and z[0, 2] == 0.0 and z[0, 3] == 0.0
    assert z[0, 0] == pytest.approx(2.0 / np.std([1, 3, 5]))
    assert np.allclose(s.inverse(z)[0, [0, 3]], [5.0, 4.0])


def test_meta_round_trip_and_typed_errors():
    s = LabStandardisation.fit(TRAIN, KEYS)
    back = LabStandardisation.from_meta(s.to_meta(), KEYS)
    assert np.array_equal(back.mean, s.mean) and np.array_equal(back.sd, s.sd)
    with pytest.raises(LabError, match="no value for 'wbc'"):
        LabStandardisation.from_meta({"mean": {}, "sd": {}}, KEYS)
    bad = s.to_meta()
    bad["sd"]["crp"] = float("nan")
    with pytest.raises(LabError, match="non-finite"):
        LabStandardisation.from_meta(bad, KEYS)
    with pytest.raises(LabError, match="expected 4 lab values"):
        s.inputs(np.zeros((2, 3)))
