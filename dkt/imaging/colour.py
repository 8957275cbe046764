"""sRGB <-> CIE Lab in numpy, and luma.

Colour statistics are compared in Lab because its axes are roughly perceptually uniform and
decorrelated (lightness apart from the two opponent colour axes), which is what makes
per-channel mean/std matching (Reinhard et al. 2001) and distances between colour
distributions meaningful. Implemented here (sRGB -> linear -> XYZ, D65 -> Lab and back) so
no colour-science dependency is needed and the maths is in one readable place.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["lab_to_srgb", "luma", "srgb_to_lab", "srgb_to_lab_tensor"]

#: Linear sRGB -> CIE XYZ, D65 white (IEC 61966-2-1).
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
#: The D65 reference white in XYZ (Y normalised to 1): the white the sRGB matrix maps 1,1,1 to.
_WHITE = _RGB_TO_XYZ.sum(axis=1)
_DELTA = 6.0 / 29.0


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 (0..255) or float (0..1) RGB -> float64 in [0, 1]."""
    a = np.asarray(image)
    if a.shape[-1] != 3:
        raise ValueError(f"expected RGB with 3 channels last, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return np.clip(a.astype(np.float64), 0.0, 1.0)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, None)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1.0 / 2.4) - 0.055)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _DELTA**3, np.cbrt(t), t / (3 * _DELTA**2) + 4.0 / 29.0)


def _f_inv(t: np.ndarray) -> np.ndarray:
    return np.where(t > _DELTA, t**3, 3 * _DELTA**2 * (t - 4.0 / 29.0))


def srgb_to_lab(image: np.ndarray) -> np.ndarray:
    """RGB (..., 3), uint8 or float in [0, 1] -> Lab float64 (L in 0..100, a/b about -128..127)."""
    xyz = _srgb_to_linear(_as_unit_float(image)) @ _RGB_TO_XYZ.T / _WHITE
    fx, fy, fz = _f(xyz[..., 0]), _f(xyz[..., 1]), _f(xyz[..., 2])
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def srgb_to_lab_tensor(image: torch.Tensor) -> torch.Tensor:
    """:func:`srgb_to_lab` for a (B, 3, H, W) tensor in [0, 1], differentiable (training).

    Values are clamped to [0, 1] first, as the numpy version does; the cube root's slope is
    bounded by the linear segment near black, so gradients stay finite.
    """
    c = image.float().clamp(0.0, 1.0)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055).pow(2.4))
    matrix = torch.as_tensor(_RGB_TO_XYZ / _WHITE[:, None], dtype=c.dtype, device=c.device)
    xyz = torch.einsum("ij,bjhw->bihw", matrix, linear)
    f = torch.where(
        xyz > _DELTA**3,
        xyz.clamp_min(_DELTA**3).pow(1.0 / 3.0),
        xyz / (3 * _DELTA**2) + 4.0 / 29.0,
    )
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """Lab (..., 3) -> sRGB float64 clipped to [0, 1] (out-of-gamut colours are clipped)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    xyz = np.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], axis=-1) * _WHITE
    return np.clip(_linear_to_srgb(xyz @ _XYZ_TO_RGB.T), 0.0, 1.0)


def luma(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of gamma-encoded RGB, float64 in [0, 1], shape (...).

    Luma (not Lab lightness) on purpose: it is linear in the encoded values, so adding a
    constant to every channel adds a constant to luma, and zero-mean filters (texture) and
    local-contrast measures (SSIM's structure term) do not react to a pure colour shift.
    """
    rgb = _as_unit_float(image)
    return rgb @ np.array([0.299, 0.587, 0.114])
