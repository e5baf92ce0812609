// Per-format surface readers and writers behind read_surface/write_surface.
#pragma once
#include <string>
#include <vector>

#include "ddcsr/io/surface.h"

namespace ddcsr::detail {

// `bytes` is the whole (already gunzipped) file; `source` names it in errors.
Mesh parse_freesurfer_binary(const std::string& bytes, const std::string& source);
Mesh parse_freesurfer_ascii(const std::string& text, const std::string& source);
Mesh parse_gifti(const std::string& xml, const std::string& source);

std::string serialize_freesurfer_binary(const Mesh& mesh, const std::string& created_by,
                                        int64_t created_time = -1);
std::string serialize_freesurfer_ascii(const Mesh& mesh, const std::string& source_name);
std::string serialize_gifti(const Mesh& mesh, GiftiEncoding encoding);
std::string serialize_gifti_labels(const Annotation& a, const std::string& hemi,
                                   GiftiEncoding encoding);
std::vector<float> parse_gifti_vertex_map(const std::string& xml, const std::string& source);
std::string serialize_gifti_vertex_map(const std::vector<float>& values, const std::string& hemi,
                                       const std::string& name, GiftiEncoding encoding);

}  // namespace ddcsr::detail
