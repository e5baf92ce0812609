// Diffusion and T2 (b0) properties of the phantom's compartments.
//
// Every compartment is an axially symmetric Gaussian tensor (lambda_par along its fibre or
// surface-normal direction, lambda_perp across); the signal of a voxel is
//   S(b, g) = scale * bias * sum_c f_c * s0_c * sum_k w_ck exp(-b g^T D_ck g),
// with f_c the partial-volume fraction of compartment c, s0_c its relative b0 (T2-weighted)
// signal and D_ck its tensors (white matter has up to four fibre populations with weights
// w_ck). Defaults: white matter FA 0.76, MD 0.80e-3 mm^2/s per fibre; cortical grey matter
// FA 0.17, MD 0.83e-3, radial to the surface; deep grey FA 0.15, MD 0.78e-3; CSF free water
// 3.0e-3; scalp 1.0e-3. b0 ratios follow PD * exp(-TE/T2) at TE ~80 ms (WM 0.23, GM 0.34,
// CSF 1.0), which gives the bright-CSF contrast of real b0 images. The whole-head anatomy
// (phantom.h, --anatomy) adds muscle, fat left over by fat suppression (nearly immobile water),
// skull marrow and the eyes' vitreous (free water); the legacy phantom never uses them.
#pragma once

namespace ddcsr::sim {

struct Compartment {
  double s0 = 1;           // relative b0 signal
  double lambda_par = 0;   // mm^2/s
  double lambda_perp = 0;  // mm^2/s
  double md() const { return (lambda_par + 2 * lambda_perp) / 3; }
  double fa() const;
};

struct TissueModel {
  Compartment white{0.23, 1.70e-3, 0.35e-3};
  Compartment cortex{0.34, 1.00e-3, 0.75e-3};
  Compartment deep_grey{0.30, 0.92e-3, 0.71e-3};  // deep nuclei and cerebellar cortex
  Compartment csf{1.00, 3.0e-3, 3.0e-3};
  Compartment scalp{0.25, 1.0e-3, 1.0e-3};  // legacy scalp; skin of the whole head
  Compartment muscle{0.20, 2.0e-3, 1.1e-3};
  Compartment fat{0.15, 0.02e-3, 0.02e-3};
  Compartment marrow{0.10, 0.3e-3, 0.3e-3};
  Compartment eye{1.00, 3.0e-3, 3.0e-3};
};

// Shape of the white-matter fibre field: weights of the callosal and association populations
// where they peak, the largest share of fibres that bend into the gyri near the white surface,
// and the size of the smooth perturbation of all directions. The defaults are the legacy
// phantom's constants.
struct FibreModel {
  double callosal = 0.5, association = 0.45, gyral = 0.6, wobble = 0.15;
};

// An axially symmetric compartment with the given mean diffusivity (mm^2/s) and FA (0 <= fa < 1).
Compartment compartment_with_fa(double s0, double md, double fa);

// exp(-b (lambda_perp + (lambda_par - lambda_perp) (g . e)^2)) for unit g and e.
double tensor_attenuation(const Compartment& c, double b, const double g[3], const double e[3]);

}  // namespace ddcsr::sim
