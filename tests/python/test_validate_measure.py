#!/usr/bin/python3
"""models/validate.py's measure: truth and prediction paired at the same world points, on either
grid. A plane's signed distance is linear, so trilinear sampling is exact and the mean absolute
error of a prediction shifted by 0.3 mm is 0.3 on both grids, whatever their spacings, origins
and axis orders; a truth/prediction swap or a wrong affine would change it."""
import importlib.util
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

spec = importlib.util.spec_from_file_location("validate", os.path.join(common.SOURCE, "models", "validate.py"))
validate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validate)

normal = np.array([0.6, -0.48, 0.64])  # unit length


def plane_sdf(shape, affine, offset):
    ijk = np.indices(shape).reshape(3, -1)
    world = (affine @ np.vstack([ijk, np.ones((1, ijk.shape[1]))]))[:3]
    return (normal @ world - offset).reshape(shape).astype(np.float32)


# Truth: 0.8 mm RAS grid. Prediction: 2 mm LPS-ordered grid with a shifted origin, covering part of it.
truth_affine = np.diag([0.8, 0.8, 0.8, 1.0])
truth_affine[:3, 3] = [-20, -24, -16]
truth_shape = (50, 60, 40)
pred_affine = np.array([[-2.0, 0, 0, 14.3], [0, -2.0, 0, 18.1], [0, 0, 2.0, -13.7], [0, 0, 0, 1]])
pred_shape = (24, 16, 12)
truth_img = nib.Nifti1Image(plane_sdf(truth_shape, truth_affine, 1.0), truth_affine)
pred = plane_sdf(pred_shape, pred_affine, 1.3)  # the surface 0.3 mm further along the normal

for on in ("model", "truth"):
    truth, predicted = validate.sample_pair(truth_img, pred_affine, pred, on)
    points = np.prod(pred_shape) if on == "model" else np.prod(truth_shape)
    assert 0 < truth.size < points, (on, truth.size)  # only the points inside both grids
    near = np.abs(truth) < 3.0
    assert near.sum() > 100, (on, near.sum())
    mae = float(np.abs(predicted[near] - truth[near]).mean())
    assert abs(mae - 0.3) < 1e-4, (on, mae)
    # The sign convention survives: the prediction is the truth minus 0.3 everywhere.
    assert np.allclose(predicted - truth, -0.3, atol=1e-4), on
print("ok")
