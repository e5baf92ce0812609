// ddcsr info: versions, threads and devices; or what ddcsr reads from an image and its gradients.
#include <torch/cuda.h>
#include <torch/version.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "cli/command.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/threads.h"
#include "ddcsr/version.h"

namespace {

struct InfoOptions {
  std::string image, bval, bvec;
  bool json = false;
};

std::string json_vec(const ddcsr::Vec3& v) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "[%.10g, %.10g, %.10g]", v[0], v[1], v[2]);
  return buf;
}

int print_image_info(const InfoOptions& o) {
  const ddcsr::VolumeHeader h = ddcsr::read_volume_header(o.image);
  std::ostringstream js;
  js.precision(10);
  const auto vox = h.vox2ras.column_norms();
  js << "{\n  \"image\": \"" << o.image << "\",\n  \"dims\": [" << h.dims[0] << ", " << h.dims[1]
     << ", " << h.dims[2] << "],\n  \"volumes\": " << h.nvols
     << ",\n  \"voxel_size\": " << json_vec(vox) << ",\n  \"orientation\": \""
     << ddcsr::orientation_code(h.vox2ras) << "\",\n  \"datatype\": \"" << h.component_type
     << "\",\n  \"vox2ras\": [";
  for (int r = 0; r < 4; ++r)
    js << (r ? ", " : "") << "[" << h.vox2ras(r, 0) << ", " << h.vox2ras(r, 1) << ", "
       << h.vox2ras(r, 2) << ", " << h.vox2ras(r, 3) << "]";
  js << "]";
  std::string text;
  char line[256];
  std::snprintf(line, sizeof line,
                "image        %s\ndimensions   %lld x %lld x %lld x %lld\nvoxel size   %.4g x %.4g "
                "x %.4g mm\n"
                "orientation  %s (%s)\n",
                o.image.c_str(), (long long)h.dims[0], (long long)h.dims[1], (long long)h.dims[2],
                (long long)h.nvols, vox[0], vox[1], vox[2],
                ddcsr::orientation_code(h.vox2ras).c_str(), h.component_type.c_str());
  text += line;
  for (int r = 0; r < 3; ++r) {
    std::snprintf(line, sizeof line, "%s %10.4f %10.4f %10.4f %10.4f\n",
                  r ? "            " : "vox2ras     ", h.vox2ras(r, 0), h.vox2ras(r, 1),
                  h.vox2ras(r, 2), h.vox2ras(r, 3));
    text += line;
  }
  if (h.nvols > 1 || !o.bval.empty()) {
    std::string bval = o.bval, bvec = o.bvec;
    if (bval.empty() || bvec.empty()) {
      const auto found = ddcsr::find_gradient_files(o.image);
      if (bval.empty()) bval = found.first;
      if (bvec.empty()) bvec = found.second;
    }
    const auto table = ddcsr::read_fsl_gradients(bval, bvec);
    ddcsr::check_gradients(table, h.nvols, o.image);
    const auto world = ddcsr::bvecs_world(table, h.vox2ras);
    std::map<long, int> shells;  // rounded to 100 s/mm^2 for the summary only
    for (double b : table.bvals) shells[b < 50 ? 0 : std::lround(b / 100.0) * 100]++;
    text += "gradients    " + bval + ", " + bvec + "\nshells      ";
    for (const auto& [b, n] : shells) text += " b=" + std::to_string(b) + ":" + std::to_string(n);
    text += "\n";
    js << ",\n  \"bvals\": [";
    for (size_t i = 0; i < table.size(); ++i) js << (i ? ", " : "") << table.bvals[i];
    js << "],\n  \"bvecs_world\": [";
    for (size_t i = 0; i < world.size(); ++i) js << (i ? ", " : "") << json_vec(world[i]);
    js << "]";
  }
  js << "\n}\n";
  std::fputs(o.json ? js.str().c_str() : text.c_str(), stdout);
  return 0;
}

ddcsr::cli::Command make_info_command() {
  ddcsr::cli::Command c;
  c.name = "info";
  c.synopsis = "Print versions, devices and threads; or what ddcsr reads from an image";
  c.description =
      "Without an argument: the ddcsr version and commit, the LibTorch version, whether CUDA is "
      "available,\n"
      "and the number of threads this run would use (what a bug report or methods section needs).\n"
      "With IMAGE: its dimensions, voxel size, orientation and voxel->scanner-RAS affine as ddcsr "
      "reads\n"
      "them, and for a 4D image its gradient table (sidecars found beside it) with b-vectors in "
      "world RAS.";
  c.order = 90;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<InfoOptions>();
    app.add_option("image", o->image, "NIfTI image to describe");
    app.add_option("--bval", o->bval, "b-value file (default: beside the image)");
    app.add_option("--bvec", o->bvec, "b-vector file, FSL convention (default: beside the image)");
    app.add_flag("--json", o->json, "Print JSON");
    return [o]() -> int {
      if (!o->image.empty()) return print_image_info(*o);
      if (o->json) {
        std::printf(
            "{\"version\": \"%s\", \"commit\": \"%s\", \"libtorch\": \"%s\", \"cuda\": %s, "
            "\"threads\": %d}\n",
            ddcsr::kVersion, ddcsr::kGitDescribe, TORCH_VERSION,
            torch::cuda::is_available() ? "true" : "false", ddcsr::thread_count());
        return 0;
      }
      std::printf("ddcsr %s (%s)\n", ddcsr::kVersion, ddcsr::kGitDescribe);
      std::printf("LibTorch %s, CUDA %s (%d devices)\n", TORCH_VERSION,
                  torch::cuda::is_available() ? "available" : "not available",
                  static_cast<int>(torch::cuda::device_count()));
      std::printf("threads %d\n", ddcsr::thread_count());
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_info_command());
