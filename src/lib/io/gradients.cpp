#include "ddcsr/io/gradients.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"

namespace fs = std::filesystem;

namespace ddcsr {

namespace {

// A b-value as written in messages. Not int(b): the files accept any finite number, and casting
// one beyond int's range (found by fuzz_gradients: 8.9e31) is undefined behaviour.
std::string bvalue_text(double b) {
  std::ostringstream out;
  out << b;
  return out.str();
}

// Rows of numbers; blank lines skipped, commas accepted as separators.
std::vector<std::vector<double>> read_number_rows(const std::string& path) {
  const std::string text = read_file_maybe_gz(path, size_t(64) << 20);
  std::vector<std::vector<double>> rows;
  std::istringstream lines(text);
  std::string line;
  int line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    for (char& c : line)
      if (c == ',' || c == '\t' || c == '\r') c = ' ';
    std::istringstream tokens(line);
    std::vector<double> row;
    std::string token;
    while (tokens >> token) {
      char* end = nullptr;
      const double value = std::strtod(token.c_str(), &end);
      if (end == token.c_str() || *end != '\0')
        throw InputError(path, "line " + std::to_string(line_no) + ": '" + token.substr(0, 32) +
                                   "' is not a number");
      if (!std::isfinite(value))
        throw InputError(path, "line " + std::to_string(line_no) + ": entry is NaN or infinite");
      row.push_back(value);
    }
    if (!row.empty()) rows.push_back(std::move(row));
  }
  if (rows.empty()) throw InputError(path, "contains no numbers");
  return rows;
}

std::string strip_nifti_extension(const std::string& path) {
  for (const char* ext : {".nii.gz", ".nii", ".NII.GZ", ".NII"}) {
    const std::string e(ext);
    if (path.size() > e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0)
      return path.substr(0, path.size() - e.size());
  }
  return path;
}

// Voxel->world rotation: the linear part with unit columns.
std::array<double, 9> unit_columns(const Affine& vox2ras) {
  const Vec3 norms = vox2ras.column_norms();
  std::array<double, 9> r{};
  for (int row = 0; row < 3; ++row)
    for (int c = 0; c < 3; ++c) r[row * 3 + c] = vox2ras(row, c) / norms[c];
  return r;
}

Vec3 normalised(const Vec3& v) {
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (n == 0) return {0, 0, 0};
  return {v[0] / n, v[1] / n, v[2] / n};
}

}  // namespace

std::pair<std::string, std::string> find_gradient_files(const std::string& dwi_path) {
  const std::string stem = strip_nifti_extension(dwi_path);
  std::error_code ec;
  std::string bval = stem + ".bval", bvec = stem + ".bvec";
  if (fs::exists(bval, ec) && fs::exists(bvec, ec)) return {bval, bvec};
  // FSL/HCP style: `bvals` and `bvecs` in the image's folder.
  const fs::path dir =
      fs::path(dwi_path).has_parent_path() ? fs::path(dwi_path).parent_path() : fs::path(".");
  const std::string bvals = (dir / "bvals").string(), bvecs = (dir / "bvecs").string();
  if (fs::exists(bvals, ec) && fs::exists(bvecs, ec)) return {bvals, bvecs};
  if (!fs::exists(bval, ec))
    throw InputError(bval, "b-value file not found beside the image (give --bval)");
  throw InputError(bvec, "b-vector file not found beside the image (give --bvec)");
}

GradientTable read_fsl_gradients(const std::string& bval_path, const std::string& bvec_path) {
  GradientTable table;
  table.bval_path = bval_path;
  table.bvec_path = bvec_path;
  for (const auto& row : read_number_rows(bval_path))
    for (double b : row) {
      if (b < 0) throw InputError(bval_path, "negative b-value " + std::to_string(b));
      table.bvals.push_back(b);
    }
  const auto rows = read_number_rows(bvec_path);
  const size_t width = rows[0].size();
  for (size_t r = 0; r < rows.size(); ++r)
    if (rows[r].size() != width)
      throw InputError(bvec_path, "row " + std::to_string(r + 1) + " has " +
                                      std::to_string(rows[r].size()) + " entries but row 1 has " +
                                      std::to_string(width));
  if (rows.size() == 3) {  // FSL's 3xN layout (also taken for the ambiguous 3x3 case)
    for (size_t i = 0; i < width; ++i)
      table.bvecs_fsl.push_back({rows[0][i], rows[1][i], rows[2][i]});
  } else if (width == 3) {  // Nx3
    for (const auto& row : rows) table.bvecs_fsl.push_back({row[0], row[1], row[2]});
  } else {
    throw InputError(bvec_path, "expected 3 rows (3xN) or 3 columns (Nx3), found " +
                                    std::to_string(rows.size()) + "x" + std::to_string(width));
  }
  if (table.bvals.size() != table.bvecs_fsl.size())
    throw InputError(bvec_path, "has " + std::to_string(table.bvecs_fsl.size()) +
                                    " b-vectors but " + bval_path + " has " +
                                    std::to_string(table.bvals.size()) + " b-values");
  return table;
}

void check_gradients(const GradientTable& table, int64_t nvols, const std::string& image_path,
                     double b0_threshold) {
  if (static_cast<int64_t>(table.size()) != nvols)
    throw InputError(table.bval_path, "has " + std::to_string(table.size()) + " entries but " +
                                          image_path + " has " + std::to_string(nvols) +
                                          " volumes");
  bool any_b0 = false;
  for (size_t i = 0; i < table.size(); ++i) {
    if (table.bvals[i] < b0_threshold) {
      any_b0 = true;
      continue;
    }
    const Vec3& g = table.bvecs_fsl[i];
    if (std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]) < 1e-6)
      throw InputError(table.bvec_path, "volume " + std::to_string(i) +
                                            " has b=" + bvalue_text(table.bvals[i]) +
                                            " but a zero-length b-vector");
  }
  if (!any_b0)
    throw InputError(table.bval_path,
                     "has no b0 volume (no b-value below " + bvalue_text(b0_threshold) + ")");
}

std::vector<Vec3> bvecs_world(const GradientTable& table, const Affine& vox2ras) {
  const auto r = unit_columns(vox2ras);
  // FSL stores radiological voxel axes: x is negated when the voxel->world determinant is positive.
  const double flip = vox2ras.determinant() > 0 ? -1.0 : 1.0;
  std::vector<Vec3> world;
  world.reserve(table.size());
  for (const Vec3& g : table.bvecs_fsl) {
    const Vec3 v{flip * g[0], g[1], g[2]};
    world.push_back(normalised({r[0] * v[0] + r[1] * v[1] + r[2] * v[2],
                                r[3] * v[0] + r[4] * v[1] + r[5] * v[2],
                                r[6] * v[0] + r[7] * v[1] + r[8] * v[2]}));
  }
  return world;
}

std::vector<Vec3> bvecs_fsl_from_world(const std::vector<Vec3>& world, const Affine& vox2ras) {
  const auto r = unit_columns(vox2ras);
  const Affine inv = Affine::from_linear_translation(r, {0, 0, 0}).inverse();
  const double flip = vox2ras.determinant() > 0 ? -1.0 : 1.0;
  std::vector<Vec3> fsl;
  fsl.reserve(world.size());
  for (const Vec3& w : world) {
    const Vec3 v = normalised(inv.apply_linear(w));
    fsl.push_back({flip * v[0], v[1], v[2]});
  }
  return fsl;
}

void write_fsl_gradients(const std::vector<double>& bvals, const std::vector<Vec3>& bvecs_fsl,
                         const std::string& bval_path, const std::string& bvec_path) {
  if (bvals.size() != bvecs_fsl.size())
    throw std::logic_error("write_fsl_gradients: count mismatch");
  std::string bval_text;
  char buf[64];
  for (size_t i = 0; i < bvals.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.10g", i ? " " : "", bvals[i]);
    bval_text += buf;
  }
  bval_text += "\n";
  std::string bvec_text;
  for (int axis = 0; axis < 3; ++axis) {
    for (size_t i = 0; i < bvecs_fsl.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%s%.8f", i ? " " : "",
                    bvecs_fsl[i][axis] == 0 ? 0.0 : bvecs_fsl[i][axis]);
      bvec_text += buf;
    }
    bvec_text += "\n";
  }
  write_file_atomic(bval_path, bval_text);
  write_file_atomic(bvec_path, bvec_text);
}

}  // namespace ddcsr
