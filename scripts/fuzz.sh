#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan), seeds their corpora from real data and runs them.
#   scripts/fuzz.sh                 each target for 1,000,000 executions (the documented campaign)
#   scripts/fuzz.sh --runs N        each target for N executions
#   scripts/fuzz.sh --smoke         each target for 30,000 executions from seed 1 (CI: reproducible)
# Prints one line per target: executions, seconds, result. Exit 1 on any crash, leak or timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=1000000
limit=""
case "${1:-}" in
  --smoke) runs=30000; limit="-seed=1" ;;  # fixed seed and count: the same inputs every CI run
  --runs) runs=$2 ;;
  "") ;;
  *) echo "usage: $0 [--smoke | --runs N]" >&2; exit 2 ;;
esac
build=${DDCSR_FUZZ_BUILD:-$root/build-fuzz}
CC=clang CXX=clang++ cmake -S tests/fuzz -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.log" 2>&1 ||
  { cat "$build.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" >>"$build.log" 2>&1 || { grep -A5 error "$build.log" | head -40; exit 1; }

corpus=$build/corpus
shared=$root/../shared/data
mkdir -p "$corpus"/{gradients,surface,gifti_xml,curv,subject_list}
# Seeds: the project's bundled data, the shared real data when present, and small files in every
# format written by nibabel (an independent writer).
cp data/sample/dwi.bval "$corpus/gradients/" 2>/dev/null || true
# Inputs that once crashed a target stay in its corpus.
for d in tests/fuzz/regressions/*/; do [ -d "$d" ] && cp "$d"* "$corpus/$(basename "$d")/"; done
for d in "$shared"/dwi/*/; do
  for b in "$d"*.bval; do [ -f "$b" ] && { cat "$b"; printf '\0'; cat "${b%.bval}.bvec"; } >"$corpus/gradients/$(basename "$b").seed"; done
done
cp data/fsaverage5/white_left.gii.gz "$corpus/surface/" 2>/dev/null || true
/usr/bin/python3 - "$corpus" <<'PY'
import sys, os, zlib
import numpy as np, nibabel as nib
c = sys.argv[1]
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
printf '%-22s %12s %9s  %s\n' target executions seconds result
for exe in "$build"/fuzz_*; do
  [ -x "$exe" ] || continue
  name=$(basename "$exe")
  dir=$corpus/${name#fuzz_}
  mkdir -p "$dir" "$build/crashes/$name"
  log=$build/$name.log
  start=$(date +%s.%N)
  # Leak detection stays on (ASan's default); -rss_limit_mb bounds hostile allocations.
  if (cd "$build/crashes/$name" && "$exe" "$dir" -runs="$runs" $limit -timeout=10 -rss_limit_mb=2048 \
        -max_len=262144 -print_final_stats=1 >"$log" 2>&1); then result=ok; else result=FAILED; status=1; fi
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  printf '%-22s %12s %9.1f  %s\n' "$name" "$execs" "$secs" "$result"
  [ $result = ok ] || tail -30 "$log"
done
exit $status
