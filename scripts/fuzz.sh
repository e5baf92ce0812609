#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan), seeds their corpora from real data and runs them.
#   scripts/fuzz.sh [TARGET...]                 the campaign: each target for 1,000,000 executions
#   scripts/fuzz.sh --runs N [TARGET...]        each target for N executions
#   scripts/fuzz.sh --smoke [TARGET...]         each target for 30,000 executions from seed 1 (CI)
# TARGET is a name like model_metadata (default: all). Targets run one after another, each on one
# core; run the campaign under `nice -n 15` on a shared machine (tests/fuzz/CAMPAIGN.md has the
# last one's numbers). Prints one line per target: executions, seconds, executions per second,
# corpus files, result. Exit 1 on any crash, leak or timeout; the input is kept in
# $build/crashes/TARGET/ (copy it to tests/fuzz/regressions/TARGET/ once fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=1000000
limit=""
case "${1:-}" in
  --smoke) runs=30000; limit="-seed=1"; shift ;;  # fixed seed and count: the same inputs every CI run
  --runs) runs=$2; shift 2 ;;
  -*) echo "usage: $0 [--smoke | --runs N] [TARGET...]" >&2; exit 2 ;;
esac
only=("$@")
build=${DDCSR_FUZZ_BUILD:-$root/build-fuzz}
CC=clang CXX=clang++ cmake -S tests/fuzz -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.log" 2>&1 ||
  { cat "$build.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" >>"$build.log" 2>&1 || { grep -A5 error "$build.log" | head -40; exit 1; }

corpus=$build/corpus
shared=$root/../shared/data
mkdir -p "$corpus"/{gradients,surface,gifti_xml,curv,subject_list,model_metadata}
# Seeds: the project's bundled data, the shared real data when present, and small files in every
# format written by nibabel (an independent writer).
cp data/sample/dwi.bval "$corpus/gradients/" 2>/dev/null || true
# Inputs that once crashed a target stay in its corpus.
for d in tests/fuzz/regressions/*/; do [ -d "$d" ] && cp "$d"* "$corpus/$(basename "$d")/"; done
for d in "$shared"/dwi/*/; do
  for b in "$d"*.bval; do [ -f "$b" ] && { cat "$b"; printf '\0'; cat "${b%.bval}.bvec"; } >"$corpus/gradients/$(basename "$b").seed"; done
done
cp data/fsaverage5/white_left.gii.gz "$corpus/surface/" 2>/dev/null || true
unzip -p models/sdfnet.pt '*/extra/metadata.json' >"$corpus/model_metadata/sdfnet.json"
/usr/bin/python3 - "$corpus" <<'PY'
import sys, os, zlib, json
import numpy as np, nibabel as nib
c = sys.argv[1]
# The shipped model's metadata and variants near each check the parser makes.
meta = json.load(open(os.path.join(c, "model_metadata", "sdfnet.json")))
variants = {"minimal": {k: meta[k] for k in ["format", "format_version", "architecture",
                        "architecture_version", "input_channels", "outputs", "output_units",
                        "grid_spacing_mm", "size_multiple", "output_range_mm"]},
            "format_v2": dict(meta, format_version=2), "other_arch": dict(meta, architecture="unet"),
            "lr_signed": dict(meta, lr_signed_channels=["fa", "x"]), "no_outputs": dict(meta, outputs=[]),
            "float_ints": dict(meta, size_multiple=16.5, width=1e3), "spacing0": dict(meta, grid_spacing_mm=0),
            "strings": dict(meta, format_version="1", input_channels="b0")}
for name, doc in variants.items():
    with open(os.path.join(c, "model_metadata", name + ".json"), "w") as fh:
        json.dump(doc, fh, indent=1)
v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
nib.freesurfer.write_geometry(os.path.join(c, "surface", "tet.white"), v, f)
vi = {"head": np.array([2, 0, 20]), "valid": "1  # volume info valid", "filename": "ref.nii.gz",
      "volume": np.array([64, 64, 30]), "voxelsize": np.array([2.0, 2.0, 3.0]),
      "xras": np.array([-1.0, 0, 0]), "yras": np.array([0, 1.0, 0]), "zras": np.array([0, 0, 1.0]),
      "cras": np.array([1.5, -2.0, 3.0])}
nib.freesurfer.write_geometry(os.path.join(c, "surface", "tet_footer.white"), v, f, volume_info=vi)
with open(os.path.join(c, "surface", "tet.asc"), "w") as fh:
    fh.write("#!ascii\n4 4\n" + "".join(f"{a} {b} {d} 0\n" for a, b, d in v) + "".join(f"{a} {b} {d} 0\n" for a, b, d in f))
for enc in ["ASCII", "B64BIN", "GZipBase64Binary"]:
    da_v = nib.gifti.GiftiDataArray(v, intent="NIFTI_INTENT_POINTSET", datatype="NIFTI_TYPE_FLOAT32", encoding=enc)
    da_f = nib.gifti.GiftiDataArray(f, intent="NIFTI_INTENT_TRIANGLE", datatype="NIFTI_TYPE_INT32", encoding=enc)
    da_v.meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": "CortexLeft"})
    xml = nib.gifti.GiftiImage(darrays=[da_v, da_f]).to_xml()
    for sub in ["surface", "gifti_xml"]:
        open(os.path.join(c, sub, f"tet_{enc}.gii"), "wb").write(xml)
nib.freesurfer.write_morph_data(os.path.join(c, "curv", "lh.thickness"), np.linspace(1, 4, 10).astype(np.float32))
with open(os.path.join(c, "subject_list", "list.tsv"), "w") as fh:
    fh.write("id\tdwi\tbval\tbvec\tmask\nsub-01\tsub-01/dwi.nii.gz\t\t\t\nsub-02\t/data/b.nii.gz\tb.bval\tb.bvec\tm.nii.gz\n")
PY

status=0
printf '%-22s %12s %9s %8s %7s  %s\n' target executions seconds exec/s corpus result
for exe in "$build"/fuzz_*; do
  [ -x "$exe" ] || continue
  name=$(basename "$exe")
  if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " ${name#fuzz_} " ]]; then continue; fi
  dir=$corpus/${name#fuzz_}
  mkdir -p "$dir" "$build/crashes/$name"
  log=$build/$name.log
  start=$(date +%s.%N)
  # Leak detection stays on (ASan's default); -rss_limit_mb bounds hostile allocations.
  if (cd "$build/crashes/$name" && "$exe" "$dir" -runs="$runs" $limit -timeout=10 -rss_limit_mb=2048 \
        -max_len=262144 -print_final_stats=1 >"$log" 2>&1); then result=ok; else result=FAILED; status=1; fi
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  printf '%-22s %12s %9.1f %8s %7s  %s\n' "$name" "$execs" "$secs" "$rate" "$(ls "$dir" | wc -l)" "$result"
  [ $result = ok ] || tail -30 "$log"
done
exit $status
