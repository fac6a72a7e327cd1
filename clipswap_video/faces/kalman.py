"""A linear Kalman filter: the predict and update steps of the face tracks.

The equations, their order and the defaults are filterpy's `KalmanFilter`
(update with the Joseph-form covariance, which stays symmetric and positive for
any gain), so tracks smooth exactly as they did with it (tests/test_kalman.py
compares the two). filterpy itself is no dependency: it requires matplotlib,
which a render node has no use for.
"""

from __future__ import annotations

import numpy as np

from clipswap_video.arrays import FloatArray


class KalmanFilter:
    """State `x` (a column of `dim_x`) and its covariance `P`; transition `F`,
    process noise `Q`, measurement matrix `H` (`dim_z` x `dim_x`) and measurement
    noise `R`. Set the matrices after construction; they start as filterpy's do."""

    def __init__(self, dim_x: int, dim_z: int) -> None:
        self.x: FloatArray = np.zeros((dim_x, 1))
        self.P: FloatArray = np.eye(dim_x)
        self.F: FloatArray = np.eye(dim_x)
        self.Q: FloatArray = np.eye(dim_x)
        self.H: FloatArray = np.zeros((dim_z, dim_x))
        self.R: FloatArray = np.eye(dim_z)

    def predict(self) -> None:
        """The prior for the next step: x = Fx, P = FPF' + Q."""
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + self.Q

    def update(self, z: FloatArray) -> None:
        """The posterior after measuring `z` (`dim_z` values)."""
        residual = z.reshape(-1, 1) - self.H @ self.x
        pht = self.P @ self.H.T
        gain = pht @ np.linalg.inv(self.H @ pht + self.R)
        self.x = self.x + gain @ residual
        i_kh = np.eye(len(self.x)) - gain @ self.H
        self.P = i_kh @ self.P @ i_kh.T + gain @ self.R @ gain.T


def white_noise_acceleration(dt: float) -> FloatArray:
    """The process noise of one (position, velocity) pair over `dt` under
    white-noise acceleration of variance 1 (filterpy's Q_discrete_white_noise, dim 2)."""
    return np.array([[0.25 * dt**4, 0.5 * dt**3], [0.5 * dt**3, dt**2]])


__all__ = ["KalmanFilter", "white_noise_acceleration"]
