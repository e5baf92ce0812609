// bval/bvec text: the input is split at its first NUL byte into the .bval and .bvec files.
#include <cstring>

#include "ddcsr/io/gradients.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* split = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t first = split ? static_cast<size_t>(split - data) : size;
  const std::string bval = fuzz::write_scratch("x.bval", data, first);
  const std::string bvec =
      fuzz::write_scratch("x.bvec", split ? split + 1 : data, split ? size - first - 1 : 0);
  try {
    const auto table = ddcsr::read_fsl_gradients(bval, bvec);
    ddcsr::check_gradients(table, static_cast<int64_t>(table.size()), "x.nii.gz");
    const auto world = ddcsr::bvecs_world(
        table, ddcsr::Affine::from_linear_translation({-2, 0.1, 0, 0, 2, 0, 0, 0, 2}, {}));
    if (world.size() != table.size()) std::abort();
  } catch (const ddcsr::InputError&) {
  }
  return 0;
}
