// Surface files: FreeSurfer binary (with volume-geometry footer), FreeSurfer ASCII (.asc),
// GIFTI (ASCII, Base64Binary, GZipBase64Binary; .gii.gz too) and FreeSurfer "curv" scalars.
// In memory, vertices are always scanner RAS.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ddcsr/mesh.h"

namespace ddcsr {

enum class SurfaceFormat { FreeSurferBinary, FreeSurferAscii, Gifti };

// By extension, like mris_convert: .gii / .surf.gii / .gii.gz -> GIFTI, .asc -> ASCII,
// anything else FreeSurfer binary.
SurfaceFormat surface_format_from_path(const std::string& path);

// Reads any supported surface (format by content, not just extension). FreeSurfer files with
// a valid footer are shifted by c_ras into scanner RAS and keep the footer in `mesh.geometry`.
// Hemisphere and surface type are taken from GIFTI metadata or the file name (lh.white).
Mesh read_surface(const std::string& path);

enum class GiftiEncoding { Ascii, Base64Binary, GZipBase64Binary };

struct SurfaceWriteOptions {
  GiftiEncoding gifti_encoding = GiftiEncoding::GZipBase64Binary;
  std::string created_by = "ddcsr";
  // Seconds since the epoch for FreeSurfer's "created by ... on DATE" stamp; negative = the
  // environment's SOURCE_DATE_EPOCH when set, else now.
  // A fixed value makes the file a pure function of the mesh (reproducible outputs).
  int64_t created_time = -1;
};

// Writes by extension, atomically. FreeSurfer files hold surface RAS = scanner RAS - c_ras of
// `mesh.geometry` (when valid; scanner RAS with no footer otherwise).
void write_surface(const Mesh& mesh, const std::string& path, const SurfaceWriteOptions& opts = {});

// Spheres (sphere, sphere.reg) are centred at 0 in both forms: FreeSurfer's file at surface RAS
// 0 with the scan's `geometry` in its footer, its GIFTI twin (`freesurfer_path` + ".surf.gii")
// at scanner RAS 0, as FreeSurfer and Workbench expect. `sphere` is centred at 0.
void write_centred_sphere(const Mesh& sphere, const VolumeGeometry& geometry,
                          const std::string& freesurfer_path);
// Reads a sphere back centred at 0 whichever form the file is (read_surface shifts FreeSurfer
// files into scanner RAS by their c_ras).
Mesh read_centred_sphere(const std::string& path);

// FreeSurfer per-vertex scalar ("curv") files, e.g. lh.thickness.
std::vector<float> read_curv(const std::string& path);
void write_curv(const std::vector<float>& values, int64_t num_faces, const std::string& path);

// A per-vertex map from a FreeSurfer curv file or a GIFTI file (its first one-value-per-vertex
// array: .shape.gii, .func.gii, .gii.gz), by content.
std::vector<float> read_vertex_map(const std::string& path);
// GIFTI shape file (one NIFTI_INTENT_SHAPE float32 array, Name `name`), as Workbench reads
// lh.sulc.shape.gii; `hemi` ("lh"/"rh") sets AnatomicalStructurePrimary. Written atomically.
void write_gifti_shape(const std::vector<float>& values, const std::string& hemi,
                       const std::string& name, const std::string& path,
                       GiftiEncoding encoding = GiftiEncoding::GZipBase64Binary);

// A cortical parcellation, one region per vertex, as FreeSurfer's .annot holds it.
struct Annotation {
  std::vector<int32_t> labels;     // per vertex: index into `names`, -1 = none
  std::vector<std::string> names;  // region names, in colour-table order
  std::vector<std::array<uint8_t, 3>>
      colours;  // RGB per region (the annot value is R+G*256+B*65536)
};
// FreeSurfer .annot (colour table version 2, as mris_ca_label writes and nibabel's read_annot
// reads). Reading maps a vertex whose value has no colour-table entry to -1.
Annotation read_annot(const std::string& path);
void write_annot(const Annotation& annotation, const std::string& path);
// The same as a GIFTI label file (.label.gii: NIFTI_INTENT_LABEL, keys = region index + 1, 0 =
// unlabelled, with the colour table), as Workbench and nibabel read it.
void write_gifti_labels(const Annotation& annotation, const std::string& hemi,
                        const std::string& path,
                        GiftiEncoding encoding = GiftiEncoding::GZipBase64Binary);

// FreeSurfer ASCII label (as label/lh.cortex.label): the given vertices of `mesh` with their
// surface RAS coordinates (scanner RAS - c_ras of mesh.geometry, the white surface's by
// convention), as FreeSurfer and nibabel.freesurfer.read_label read them. Written atomically.
void write_label(const Mesh& mesh, const std::vector<int64_t>& vertices, const std::string& path);

// Hemisphere ("lh"/"rh") and surface ("white", "pial", ...) guessed from a file name
// (lh.white, white_left.gii.gz, sub-01_hemi-L_pial.surf.gii); empty when unknown.
void guess_hemi_surface(const std::string& path, std::string& hemi, std::string& surface);

}  // namespace ddcsr
