// GIFTI surfaces (spec v1.0): pointset + triangle arrays in ASCII, Base64Binary or
// GZipBase64Binary.
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/version.h"
#include "io/surface_formats.h"
#include "io/xml.h"

namespace ddcsr {

namespace {

const char* kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kBase64[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_decode(const std::string& in, const std::string& source) {
  static int8_t table[256];
  static bool init = false;
  if (!init) {
    std::memset(table, -1, sizeof table);
    for (int i = 0; i < 64; ++i) table[static_cast<uint8_t>(kBase64[i])] = static_cast<int8_t>(i);
    init = true;
  }
  std::string out;
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (char c : in) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    const int8_t v = table[static_cast<uint8_t>(c)];
    if (v < 0 || padding) throw InputError(source, "GIFTI data is not valid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

// zlib stream (what nibabel and Workbench write); gzip wrapping is accepted too.
std::string inflate_bytes(const std::string& in, size_t expected, const std::string& source) {
  std::string out(expected, '\0');
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw InputError(source, "cannot initialise zlib");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int status = inflate(&zs, Z_FINISH);
  const size_t produced = expected - zs.avail_out;
  inflateEnd(&zs);
  if (status != Z_STREAM_END || produced != expected)
    throw InputError(source, "GIFTI compressed data is corrupt or does not match Dim0/Dim1");
  return out;
}

std::string deflate_bytes(const std::string& in) {
  uLongf size = compressBound(static_cast<uLong>(in.size()));
  std::string out(size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                reinterpret_cast<const Bytef*>(in.data()), static_cast<uLong>(in.size()),
                6) != Z_OK)
    throw std::runtime_error("zlib compression failed");
  out.resize(size);
  return out;
}

struct DataArray {
  std::string intent, datatype;
  int64_t dim0 = 0, dim1 = 1;
  std::vector<double> values;  // row-major
  std::map<std::string, std::string> meta;
};

size_t datatype_size(const std::string& t) {
  if (t == "NIFTI_TYPE_FLOAT32" || t == "NIFTI_TYPE_INT32" || t == "NIFTI_TYPE_UINT32") return 4;
  if (t == "NIFTI_TYPE_FLOAT64" || t == "NIFTI_TYPE_INT64") return 8;
  if (t == "NIFTI_TYPE_UINT8" || t == "NIFTI_TYPE_INT8") return 1;
  if (t == "NIFTI_TYPE_INT16" || t == "NIFTI_TYPE_UINT16") return 2;
  return 0;
}

template <typename T>
double load_as_double(const char* bytes) {
  T v;
  std::memcpy(&v, bytes, sizeof v);
  return static_cast<double>(v);
}

double binary_value(const char* p, const std::string& t, bool swap) {
  char b[8];
  const size_t n = datatype_size(t);
  for (size_t i = 0; i < n; ++i) b[i] = swap ? p[n - 1 - i] : p[i];
  if (t == "NIFTI_TYPE_FLOAT32") return load_as_double<float>(b);
  if (t == "NIFTI_TYPE_FLOAT64") return load_as_double<double>(b);
  if (t == "NIFTI_TYPE_INT32") return load_as_double<int32_t>(b);
  if (t == "NIFTI_TYPE_UINT32") return load_as_double<uint32_t>(b);
  if (t == "NIFTI_TYPE_INT64") return load_as_double<int64_t>(b);
  if (t == "NIFTI_TYPE_INT16") return load_as_double<int16_t>(b);
  if (t == "NIFTI_TYPE_UINT16") return load_as_double<uint16_t>(b);
  if (t == "NIFTI_TYPE_INT8") return load_as_double<int8_t>(b);
  return load_as_double<uint8_t>(b);
}

std::map<std::string, std::string> read_metadata(const xml::Element* meta) {
  std::map<std::string, std::string> out;
  if (!meta) return out;
  for (const auto* md : meta->children_named("MD")) {
    const auto* name = md->child("Name");
    const auto* value = md->child("Value");
    if (name) out[name->text] = value ? value->text : "";
  }
  return out;
}

int64_t parse_dim(const xml::Element& el, const std::string& key, const std::string& source) {
  const std::string text = el.attribute(key);
  if (text.empty()) return -1;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || v < 0 || v > (1LL << 31))
    throw InputError(source, "GIFTI " + key + " is not a valid size");
  return v;
}

DataArray read_data_array(const xml::Element& el, const std::string& source, size_t file_size) {
  DataArray a;
  a.intent = el.attribute("Intent");
  a.datatype = el.attribute("DataType");
  const int dimensionality = std::atoi(el.attribute("Dimensionality", "1").c_str());
  a.dim0 = parse_dim(el, "Dim0", source);
  const int64_t dim1 = parse_dim(el, "Dim1", source);
  a.dim1 = dimensionality >= 2 && dim1 > 0 ? dim1 : 1;
  if (a.dim0 < 0) throw InputError(source, "GIFTI DataArray without Dim0");
  if (dimensionality > 2) throw InputError(source, "GIFTI DataArray with more than 2 dimensions");
  if (!el.attribute("ExternalFileName").empty())
    throw InputError(source, "GIFTI data in external files is not supported");
  a.meta = read_metadata(el.child("MetaData"));
  const size_t count = static_cast<size_t>(a.dim0 * a.dim1);
  const std::string encoding = el.attribute("Encoding", "ASCII");
  const xml::Element* data = el.child("Data");
  const std::string text = data ? data->text : "";
  const size_t elem = datatype_size(a.datatype);
  if (elem == 0) throw InputError(source, "GIFTI DataType '" + a.datatype + "' is not supported");
  // Compressed data may be much smaller than what it claims; bound claims by a generous ratio.
  if (count * elem > std::max<size_t>(file_size, 1) * 1100 + (size_t(1) << 20))
    throw InputError(source, "GIFTI Dim0/Dim1 claim more data than the file can hold");
  a.values.resize(count);
  if (encoding == "ASCII") {
    std::istringstream in(text);
    for (size_t i = 0; i < count; ++i)
      if (!(in >> a.values[i]))
        throw InputError(source, "GIFTI ASCII data has fewer values than Dim0 x Dim1");
  } else if (encoding == "Base64Binary" || encoding == "GZipBase64Binary") {
    std::string bytes = base64_decode(text, source);
    if (encoding == "GZipBase64Binary") bytes = inflate_bytes(bytes, count * elem, source);
    if (bytes.size() != count * elem)
      throw InputError(source, "GIFTI binary data size does not match Dim0 x Dim1 x " + a.datatype);
    const bool big = el.attribute("Endian", "LittleEndian") == "BigEndian";
    const bool swap = big != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
    for (size_t i = 0; i < count; ++i)
      a.values[i] = binary_value(bytes.data() + i * elem, a.datatype, swap);
  } else {
    throw InputError(source, "GIFTI Encoding '" + encoding + "' is not supported");
  }
  if (el.attribute("ArrayIndexingOrder", "RowMajorOrder") == "ColumnMajorOrder" && a.dim1 > 1) {
    std::vector<double> row(count);
    for (int64_t r = 0; r < a.dim0; ++r)
      for (int64_t c = 0; c < a.dim1; ++c) row[r * a.dim1 + c] = a.values[c * a.dim0 + r];
    a.values.swap(row);
  }
  return a;
}

std::string md(const std::string& name, const std::string& value) {
  return "      <MD>\n        <Name><![CDATA[" + name + "]]></Name>\n        <Value><![CDATA[" +
         value + "]]></Value>\n      </MD>\n";
}

std::string encode_array(const std::string& raw, const std::string& ascii, GiftiEncoding encoding) {
  switch (encoding) {
    case GiftiEncoding::Ascii:
      return ascii;
    case GiftiEncoding::Base64Binary:
      return base64_encode(raw);
    default:
      return base64_encode(deflate_bytes(raw));
  }
}

const char* encoding_name(GiftiEncoding e) {
  switch (e) {
    case GiftiEncoding::Ascii:
      return "ASCII";
    case GiftiEncoding::Base64Binary:
      return "Base64Binary";
    default:
      return "GZipBase64Binary";
  }
}

}  // namespace

namespace detail {

Mesh parse_gifti(const std::string& document, const std::string& source) {
  std::unique_ptr<xml::Element> root;
  try {
    root = xml::parse(document);
  } catch (const xml::ParseError& e) {
    throw InputError(source, std::string("not valid GIFTI XML: ") + e.what());
  }
  if (root->name != "GIFTI")
    throw InputError(source, "root element is <" + root->name + ">, not <GIFTI>");
  const DataArray* points = nullptr;
  const DataArray* triangles = nullptr;
  std::vector<DataArray> arrays;
  const auto elements = root->children_named("DataArray");
  arrays.reserve(elements.size());
  for (const auto* el : elements) arrays.push_back(read_data_array(*el, source, document.size()));
  for (const auto& a : arrays) {
    if (a.intent == "NIFTI_INTENT_POINTSET" && !points) points = &a;
    if (a.intent == "NIFTI_INTENT_TRIANGLE" && !triangles) triangles = &a;
  }
  if (!points)
    throw InputError(source, "GIFTI file has no NIFTI_INTENT_POINTSET array (not a surface)");
  if (!triangles)
    throw InputError(source, "GIFTI file has no NIFTI_INTENT_TRIANGLE array (not a surface)");
  if (points->dim1 != 3) throw InputError(source, "GIFTI pointset must be Dim0 x 3");
  if (triangles->dim1 != 3) throw InputError(source, "GIFTI triangle array must be Dim0 x 3");
  Mesh mesh;
  mesh.vertices.resize(points->dim0);
  for (int64_t i = 0; i < points->dim0; ++i)
    for (int a = 0; a < 3; ++a) mesh.vertices[i][a] = static_cast<float>(points->values[i * 3 + a]);
  mesh.faces.resize(triangles->dim0);
  for (int64_t i = 0; i < triangles->dim0; ++i)
    for (int a = 0; a < 3; ++a) {
      const double v = triangles->values[i * 3 + a];
      if (!(v >= 0 && v < 2147483647.0) || v != std::floor(v))
        throw InputError(source,
                         "GIFTI triangle " + std::to_string(i) + " has an invalid vertex index");
      mesh.faces[i][a] = static_cast<int32_t>(v);
    }
  // Per-vertex arrays riding along (shape/curvature), keyed by their Name metadata.
  for (const auto& a : arrays) {
    if (&a == points || &a == triangles || a.dim1 != 1 || a.dim0 != points->dim0) continue;
    const auto name =
        a.meta.count("Name") ? a.meta.at("Name") : "array" + std::to_string(mesh.scalars.size());
    mesh.scalars[name] = std::vector<float>(a.values.begin(), a.values.end());
  }
  const auto& meta = points->meta;
  if (meta.count("AnatomicalStructurePrimary")) {
    const auto& s = meta.at("AnatomicalStructurePrimary");
    mesh.hemi = s == "CortexLeft" ? "lh" : s == "CortexRight" ? "rh" : "";
  }
  if (meta.count("AnatomicalStructureSecondary")) {
    const auto& s = meta.at("AnatomicalStructureSecondary");
    mesh.surface = s == "GrayWhite"      ? "white"
                   : s == "Pial"         ? "pial"
                   : s == "MidThickness" ? "midthickness"
                                         : "";
  }
  check_mesh(mesh, source);
  return mesh;
}

std::vector<float> parse_gifti_vertex_map(const std::string& document, const std::string& source) {
  std::unique_ptr<xml::Element> root;
  try {
    root = xml::parse(document);
  } catch (const xml::ParseError& e) {
    throw InputError(source, std::string("not valid GIFTI XML: ") + e.what());
  }
  if (root->name != "GIFTI")
    throw InputError(source, "root element is <" + root->name + ">, not <GIFTI>");
  for (const auto* el : root->children_named("DataArray")) {
    DataArray a = read_data_array(*el, source, document.size());
    if (a.intent == "NIFTI_INTENT_POINTSET" || a.intent == "NIFTI_INTENT_TRIANGLE" || a.dim1 != 1)
      continue;
    return std::vector<float>(a.values.begin(), a.values.end());
  }
  throw InputError(source, "GIFTI file has no per-vertex array (one value per vertex)");
}

// A GIFTI file of one per-vertex array (shape or label): the document around `data`.
std::string one_array_gifti(const std::string& hemi, const std::string& label_table,
                            const std::string& intent, const std::string& type, size_t count,
                            const std::string& array_meta, const std::string& data,
                            GiftiEncoding encoding) {
  const std::string endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? "BigEndian" : "LittleEndian";
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!DOCTYPE GIFTI SYSTEM \"http://www.nitrc.org/frs/download.php/115/gifti.dtd\">\n"
      "<GIFTI Version=\"1.0\" NumberOfDataArrays=\"1\">\n"
      "  <MetaData>\n" +
      md("generator", std::string("ddcsr ") + kVersion);
  if (hemi == "lh" || hemi == "rh")
    out += md("AnatomicalStructurePrimary", hemi == "lh" ? "CortexLeft" : "CortexRight");
  return out + "  </MetaData>\n" + label_table + "  <DataArray Intent=\"" + intent +
         "\" DataType=\"" + type +
         "\" ArrayIndexingOrder=\"RowMajorOrder\" Dimensionality=\"1\" Dim0=\"" +
         std::to_string(count) + "\" Encoding=\"" + encoding_name(encoding) + "\" Endian=\"" +
         endian + "\" ExternalFileName=\"\" ExternalFileOffset=\"\">\n" + array_meta +
         "    <Data>" + data + "</Data>\n  </DataArray>\n</GIFTI>\n";
}

std::string serialize_gifti_vertex_map(const std::vector<float>& values, const std::string& hemi,
                                       const std::string& name, GiftiEncoding encoding) {
  std::string raw(values.size() * 4, '\0');
  std::memcpy(raw.data(), values.data(), raw.size());
  std::string ascii;
  if (encoding == GiftiEncoding::Ascii) {
    char buf[32];
    for (float v : values) {
      std::snprintf(buf, sizeof buf, "%.9g\n", v);
      ascii += buf;
    }
  }
  return one_array_gifti(hemi, "  <LabelTable/>\n", "NIFTI_INTENT_SHAPE", "NIFTI_TYPE_FLOAT32",
                         values.size(), "    <MetaData>\n" + md("Name", name) + "    </MetaData>\n",
                         encode_array(raw, ascii, encoding), encoding);
}

std::string serialize_gifti_labels(const Annotation& a, const std::string& hemi,
                                   GiftiEncoding encoding) {
  // Keys are region indices + 1; 0 is "???" (unlabelled), as mris_convert --annot writes it.
  std::vector<int32_t> keys(a.labels.size());
  for (size_t v = 0; v < keys.size(); ++v) keys[v] = a.labels[v] + 1;
  std::string raw(keys.size() * 4, '\0');
  std::memcpy(raw.data(), keys.data(), raw.size());
  std::string ascii;
  if (encoding == GiftiEncoding::Ascii)
    for (int32_t k : keys) ascii += std::to_string(k) + "\n";
  auto label = [](int key, double r, double g, double b, double alpha, const std::string& name) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "    <Label Key=\"%d\" Red=\"%.6g\" Green=\"%.6g\" Blue=\"%.6g\" Alpha=\"%.6g\">",
                  key, r, g, b, alpha);
    return std::string(buf) + "<![CDATA[" + name + "]]></Label>\n";
  };
  std::string table = "  <LabelTable>\n" + label(0, 0, 0, 0, 0, "???");
  for (size_t e = 0; e < a.names.size(); ++e)
    table += label(int(e) + 1, a.colours[e][0] / 255.0, a.colours[e][1] / 255.0,
                   a.colours[e][2] / 255.0, 1, a.names[e]);
  table += "  </LabelTable>\n";
  return one_array_gifti(hemi, table, "NIFTI_INTENT_LABEL", "NIFTI_TYPE_INT32", keys.size(),
                         "    <MetaData/>\n", encode_array(raw, ascii, encoding), encoding);
}

std::string serialize_gifti(const Mesh& mesh, GiftiEncoding encoding) {
  std::string points_raw(mesh.vertices.size() * 12, '\0'), faces_raw(mesh.faces.size() * 12, '\0');
  std::memcpy(points_raw.data(), mesh.vertices.data(), points_raw.size());
  std::memcpy(faces_raw.data(), mesh.faces.data(), faces_raw.size());
  std::string points_ascii, faces_ascii;
  if (encoding == GiftiEncoding::Ascii) {
    char buf[96];
    for (const auto& v : mesh.vertices) {
      std::snprintf(buf, sizeof buf, "%.9g %.9g %.9g\n", v[0], v[1], v[2]);
      points_ascii += buf;
    }
    for (const auto& f : mesh.faces) {
      std::snprintf(buf, sizeof buf, "%d %d %d\n", f[0], f[1], f[2]);
      faces_ascii += buf;
    }
  }
  const std::string endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? "BigEndian" : "LittleEndian";
  const std::string enc = encoding_name(encoding);
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!DOCTYPE GIFTI SYSTEM \"http://www.nitrc.org/frs/download.php/115/gifti.dtd\">\n"
      "<GIFTI Version=\"1.0\" NumberOfDataArrays=\"2\">\n"
      "  <MetaData>\n" +
      md("generator", std::string("ddcsr ") + kVersion) +
      "  </MetaData>\n"
      "  <LabelTable/>\n"
      "  <DataArray Intent=\"NIFTI_INTENT_POINTSET\" DataType=\"NIFTI_TYPE_FLOAT32\" "
      "ArrayIndexingOrder=\"RowMajorOrder\" Dimensionality=\"2\" Dim0=\"" +
      std::to_string(mesh.vertices.size()) + "\" Dim1=\"3\" Encoding=\"" + enc + "\" Endian=\"" +
      endian + "\" ExternalFileName=\"\" ExternalFileOffset=\"\">\n    <MetaData>\n";
  if (mesh.hemi == "lh" || mesh.hemi == "rh")
    out += md("AnatomicalStructurePrimary", mesh.hemi == "lh" ? "CortexLeft" : "CortexRight");
  if (mesh.surface == "white")
    out += md("AnatomicalStructureSecondary", "GrayWhite");
  else if (mesh.surface == "pial")
    out += md("AnatomicalStructureSecondary", "Pial");
  else if (mesh.surface == "midthickness")
    out += md("AnatomicalStructureSecondary", "MidThickness");
  out += md("GeometricType",
            mesh.surface == "inflated" || mesh.surface == "sphere" ? "Inflated" : "Anatomical");
  out +=
      "    </MetaData>\n"
      "    <CoordinateSystemTransformMatrix>\n"
      "      <DataSpace><![CDATA[NIFTI_XFORM_SCANNER_ANAT]]></DataSpace>\n"
      "      <TransformedSpace><![CDATA[NIFTI_XFORM_SCANNER_ANAT]]></TransformedSpace>\n"
      "      <MatrixData>1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1</MatrixData>\n"
      "    </CoordinateSystemTransformMatrix>\n"
      "    <Data>" +
      encode_array(points_raw, points_ascii, encoding) +
      "</Data>\n  </DataArray>\n"
      "  <DataArray Intent=\"NIFTI_INTENT_TRIANGLE\" DataType=\"NIFTI_TYPE_INT32\" "
      "ArrayIndexingOrder=\"RowMajorOrder\" Dimensionality=\"2\" Dim0=\"" +
      std::to_string(mesh.faces.size()) + "\" Dim1=\"3\" Encoding=\"" + enc + "\" Endian=\"" +
      endian + "\" ExternalFileName=\"\" ExternalFileOffset=\"\">\n    <MetaData/>\n    <Data>" +
      encode_array(faces_raw, faces_ascii, encoding) + "</Data>\n  </DataArray>\n</GIFTI>\n";
  return out;
}

}  // namespace detail
}  // namespace ddcsr
