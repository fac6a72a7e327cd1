"""faces/kalman.py gives filterpy's numbers, step for step."""

from __future__ import annotations

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter as FilterpyKalmanFilter
from scipy.linalg import block_diag

from clipswap_video.faces.kalman import KalmanFilter, white_noise_acceleration


def test_white_noise_acceleration_is_filterpys() -> None:
    for dt in (1.0, 0.5, 3.0):
        np.testing.assert_array_equal(
            white_noise_acceleration(dt), Q_discrete_white_noise(dim=2, dt=dt, var=1.0)
        )


def test_same_states_as_filterpy() -> None:
    """Three constant-velocity coordinates, noise changed between steps (as the
    tracks re-scale it to the face size), updates skipped on some steps."""
    rng = np.random.default_rng(7)
    dim_z = 3
    ours, reference = KalmanFilter(2 * dim_z, dim_z), FilterpyKalmanFilter(2 * dim_z, dim_z)
    np.testing.assert_array_equal(ours.P, reference.P)  # the same defaults
    np.testing.assert_array_equal(ours.R, reference.R)
    for kalman in (ours, reference):
        kalman.F = block_diag(*[np.array([[1.0, 1.0], [0.0, 1.0]])] * dim_z)
        kalman.H = np.zeros((dim_z, 2 * dim_z))
        kalman.H[np.arange(dim_z), 2 * np.arange(dim_z)] = 1.0
        kalman.P = np.diag([4.0, 0.5] * dim_z)
    truth = np.array([10.0, -3.0, 50.0])
    for step in range(60):
        scale = 1.0 + 0.02 * step
        truth = truth + np.array([0.7, 0.1, -0.4])
        measured = truth + rng.normal(0.0, 2.0, dim_z)
        for kalman in (ours, reference):
            kalman.Q = block_diag(*[white_noise_acceleration(1.0)] * dim_z) * (0.01 * scale) ** 2
            kalman.R = np.eye(dim_z) * (2.0 * scale) ** 2
            kalman.predict()
            if step % 5 != 4:
                kalman.update(measured)
        np.testing.assert_array_equal(ours.x, reference.x)  # the same operations, bit for bit
        np.testing.assert_array_equal(ours.P, reference.P)
    assert abs(ours.x[0, 0] - truth[0]) < 3.0  # and it tracks
