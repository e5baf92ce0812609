"""The tentorium surfaces of bench/data/*_tentorium.json (format in bench/data/README.md):
height z(x, y) of the tentorium in scanner RAS, the anterior limit of the posterior fossa, and
which points lie below the tentorium (in the cerebellum / brainstem compartment).

    from tentorium import Tentorium
    t = Tentorium("bench/data/philips_enh_tentorium.json")
    below = t.below(vertices)            # bool per point
    h = t.height_above(vertices)         # mm above the tentorium (negative below it)
"""
import json

import numpy as np
from scipy.interpolate import RBFInterpolator


class Tentorium:
    def __init__(self, path):
        with open(path) as f:
            self.doc = json.load(f)
        pts = np.array([[p["x"], p["y"], p["z"]] for p in self.doc["points"]], float)
        s = self.doc["surface"]
        if s["type"] != "thin_plate_spline":
            raise ValueError(f"{path}: unknown surface type {s['type']}")
        self.points = pts
        self._rbf = RBFInterpolator(pts[:, :2], pts[:, 2], kernel="thin_plate_spline", smoothing=float(s["smoothing"]))
        fr = self.doc["posterior_fossa_front"]
        self.a, self.b, self.c = float(fr["a"]), float(fr["b"]), float(fr["c"])

    def z(self, x, y):
        """Height of the tentorium (scanner RAS z, mm) above (x, y)."""
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        return self._rbf(np.stack([x.ravel(), y.ravel()], 1)).reshape(x.shape)

    def y_front(self, x):
        """Anterior limit of the posterior fossa at x: nothing in front of it is below."""
        return self.a - self.b * np.sqrt(np.asarray(x, float) ** 2 + self.c ** 2)

    def height_above(self, points):
        p = np.asarray(points, float)
        return p[:, 2] - self.z(p[:, 0], p[:, 1])

    def below(self, points, margin=0.0):
        """Points more than `margin` mm below the tentorium and behind the fossa's front."""
        p = np.asarray(points, float)
        return (self.height_above(p) < -margin) & (p[:, 1] < self.y_front(p[:, 0]))
