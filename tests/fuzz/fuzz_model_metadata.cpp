// SDFNet model metadata (the JSON document in a model file's extra/metadata.json). The parser
// takes the member's text, which a hostile model file controls completely.
#include <cmath>

#include "ddcsr/sdfnet/sdfnet.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto m = ddcsr::parse_sdfnet_metadata(text, "model.pt");
    // What the loader and inference rely on once the metadata is accepted.
    if (m.input_channels.empty() || m.outputs != ddcsr::sdfnet_outputs()) std::abort();
    if (!(m.grid_spacing_mm > 0) || !std::isfinite(m.grid_spacing_mm)) std::abort();
    if (m.size_multiple < 1 || !(m.output_range_mm > 0)) std::abort();
    // The document is saved back into trained models: it must re-parse to the same metadata.
    const auto again = ddcsr::parse_sdfnet_metadata(m.json, "model.pt");
    if (again.json != m.json || again.input_channels != m.input_channels) std::abort();
  } catch (const ddcsr::InputError&) {
  }
  return 0;
}
