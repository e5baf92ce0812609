#!/usr/bin/python3
"""bench/feature_domain.py on a feature folder with known contents: FA is read back through the
normalisation recorded in features.json, voxels fall in the right FA class, the mask is honoured,
and each channel's median per class is reported."""
import importlib.util
import json
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

spec = importlib.util.spec_from_file_location("feature_domain",
                                              os.path.join(common.SOURCE, "bench", "feature_domain.py"))
feature_domain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(feature_domain)

folder = common.workdir("feature_domain")
names = ["b0", "fa", "md", "sm_b1000", "sm_b2500", "mask"]
shape = (10, 8, 6)
features = np.zeros(shape + (len(names),), np.float32)
mask = np.zeros(shape, np.float32)
mask[:, :, :5] = 1  # the last slice is outside the brain
fa_center, fa_scale = 0.3, 0.2
fa = np.full(shape, 0.3, np.float32)  # neither class
fa[:4] = 0.6                          # 4 of 10 x-planes: white-matter-like
fa[8:] = 0.05                         # 2 of 10: grey matter / CSF
fa[:, :, 5] = 0.9                     # outside the mask: must not count
features[..., 1] = (fa - fa_center) / fa_scale
for name, (high, low) in {"b0": (-0.5, 1.5), "md": (-0.25, 2.0), "sm_b1000": (0.3, -1.7),
                          "sm_b2500": (0.6, -1.2)}.items():
    features[..., names.index(name)] = np.where(fa > 0.4, high, np.where(fa < 0.15, low, 9.0))
affine = np.diag([2.0, 2.0, 2.0, 1.0])
nib.save(nib.Nifti1Image(features, affine), os.path.join(folder, "features.nii.gz"))
nib.save(nib.Nifti1Image(mask, affine), os.path.join(folder, "mask.nii.gz"))
channels = [{"name": n, "normalisation": {"center": fa_center, "scale": fa_scale}} if n == "fa"
            else {"name": n, "normalisation": {"method": "robust_z"}} for n in names]
json.dump({"channels": channels}, open(os.path.join(folder, "features.json"), "w"))

row = feature_domain.feature_row(folder)
assert abs(row["high_fa_percent"] - 40.0) < 1e-6, row
assert abs(row["low_fa_percent"] - 20.0) < 1e-6, row
assert row["fa_center"] == fa_center and row["fa_scale"] == fa_scale, row
assert np.allclose(row["b0"], (-0.5, 1.5)) and np.allclose(row["md"], (-0.25, 2.0)), row
assert np.allclose(row["sm_b1000"], (0.3, -1.7)) and np.allclose(row["sm_b2500"], (0.6, -1.2)), row
print("ok")
