// The model metadata document (extra/metadata.json) and its checks. No torch here, so the parser
// can be fuzzed and tested without LibTorch.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "ddcsr/error.h"
#include "ddcsr/sdfnet/sdfnet.h"

namespace ddcsr {

std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + names[i];
  return out;
}

namespace {

using Json = nlohmann::ordered_json;

const Json& required(const Json& doc, const std::string& key, const std::string& path) {
  auto it = doc.find(key);
  if (it == doc.end()) throw InputError(path, "model metadata lacks \"" + key + "\"");
  return *it;
}

// nlohmann's get<int>() casts any number, and a float beyond int's range (1e300) makes that cast
// undefined behaviour; a count or version must be a JSON integer that fits.
int integer(const Json& value, const std::string& key, const std::string& path) {
  if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    if (value.is_number_unsigned() ? value.get<uint64_t>() <= uint64_t(INT_MAX)
                                   : (v >= INT_MIN && v <= INT_MAX))
      return static_cast<int>(v);
  }
  std::string shown = value.dump();
  if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
  throw InputError(path,
                   "model metadata \"" + key + "\" is " + shown + ", not an integer in range");
}

int optional_integer(const Json& doc, const std::string& key, const std::string& path) {
  auto it = doc.find(key);
  return it == doc.end() ? 0 : integer(*it, key, path);
}

}  // namespace

const std::vector<std::string>& sdfnet_outputs() {
  static const std::vector<std::string> outputs{"lh.white", "lh.pial", "rh.white", "rh.pial"};
  return outputs;
}

SdfNetMetadata parse_sdfnet_metadata(const std::string& json_text, const std::string& path) {
  // The document is kept and saved back indented (json below), and an indented dump grows with
  // the square of the nesting depth: 120,000 nested brackets in 240 kB would become ~14 GB.
  // The real document nests three levels.
  constexpr int kMaxDepth = 16;
  const Json::parser_callback_t limit_depth = [&](int depth, Json::parse_event_t, Json&) {
    if (depth > kMaxDepth)
      throw InputError(path,
                       "model metadata nests deeper than " + std::to_string(kMaxDepth) + " levels");
    return true;
  };
  Json doc;
  try {
    doc = Json::parse(json_text, limit_depth);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(path, std::string("model metadata is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) throw InputError(path, "model metadata is not a JSON object");
  SdfNetMetadata m;
  try {
    m.format = required(doc, "format", path).get<std::string>();
    if (m.format != kSdfNetFormat)
      throw InputError(path, "not a ddcsr SDFNet model (format \"" + m.format + "\", expected \"" +
                                 kSdfNetFormat + "\")");
    m.format_version = integer(required(doc, "format_version", path), "format_version", path);
    if (m.format_version != kSdfNetFormatVersion)
      throw InputError(path, "SDFNet model format version " + std::to_string(m.format_version) +
                                 " is not supported by this ddcsr (supports " +
                                 std::to_string(kSdfNetFormatVersion) + ")");
    m.architecture = required(doc, "architecture", path).get<std::string>();
    m.architecture_version =
        integer(required(doc, "architecture_version", path), "architecture_version", path);
    if (m.architecture != kSdfNetArchitecture ||
        m.architecture_version != kSdfNetArchitectureVersion)
      throw InputError(path, "model architecture \"" + m.architecture + "\" version " +
                                 std::to_string(m.architecture_version) +
                                 " is not supported (expected \"" + kSdfNetArchitecture +
                                 "\" version " + std::to_string(kSdfNetArchitectureVersion) + ")");
    m.input_channels = required(doc, "input_channels", path).get<std::vector<std::string>>();
    m.lr_signed_channels = doc.value("lr_signed_channels", std::vector<std::string>{});
    m.outputs = required(doc, "outputs", path).get<std::vector<std::string>>();
    m.output_units = required(doc, "output_units", path).get<std::string>();
    m.sign_convention = doc.value("sign_convention", std::string());
    m.normalisation = doc.value("normalisation", std::string());
    m.grid_spacing_mm = required(doc, "grid_spacing_mm", path).get<double>();
    m.size_multiple = integer(required(doc, "size_multiple", path), "size_multiple", path);
    m.output_range_mm = required(doc, "output_range_mm", path).get<double>();
    m.width = optional_integer(doc, "width", path);
    m.levels = optional_integer(doc, "levels", path);
    m.trained = doc.value("trained", false);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(path, std::string("malformed model metadata: ") + e.what());
  }
  if (m.input_channels.empty()) throw InputError(path, "model metadata lists no input channels");
  for (const auto& c : m.lr_signed_channels)
    if (std::find(m.input_channels.begin(), m.input_channels.end(), c) == m.input_channels.end())
      throw InputError(path, "left-right signed channel \"" + c + "\" is not an input channel");
  if (m.outputs != sdfnet_outputs())
    throw InputError(path, "model outputs [" + name_list(m.outputs) + "], expected [" +
                               name_list(sdfnet_outputs()) + "]");
  if (m.output_units != "mm")
    throw InputError(path, "model outputs are in \"" + m.output_units + "\", not mm");
  if (!(m.grid_spacing_mm > 0) || !std::isfinite(m.grid_spacing_mm))
    throw InputError(path, "model metadata has no positive grid_spacing_mm");
  if (m.size_multiple < 1 || m.size_multiple > 1024)
    throw InputError(path, "model metadata has an implausible size_multiple");
  if (!(m.output_range_mm > 0) || !std::isfinite(m.output_range_mm))
    throw InputError(path, "model metadata has no positive output_range_mm");
  m.json = doc.dump(1);
  return m;
}

void check_sdfnet_channels(const SdfNetMetadata& metadata, const std::vector<std::string>& expected,
                           const std::string& path) {
  if (expected.empty() || expected == metadata.input_channels) return;
  throw InputError(path, "model expects input channels [" + name_list(metadata.input_channels) +
                             "] but the features are [" + name_list(expected) +
                             "]: the model was made for other features");
}

Device parse_device(const std::string& name) {
  if (name == "auto") return Device::Auto;
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") return Device::Cuda;
  throw UsageError("unknown device \"" + name + "\" (use auto, cpu or cuda)");
}

}  // namespace ddcsr
