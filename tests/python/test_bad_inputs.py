"""Hostile and broken inputs: each gives its exit code (3 bad data, 2 usage), one line on stderr naming
the file and the fault, nothing under a final output name, and bounded memory."""
import gzip
import os
import json
import resource
import shutil
import signal
import subprocess
import sys
import zipfile

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import DDCSR, SOURCE, workdir, MODEL, require_model, check, finish  # noqa: E402

W = workdir("bad_inputs")


def write_dwi(path, data=None, affine=None, bvals=None, bvecs=None, dtype=np.int16):
    rng = np.random.default_rng(0)
    if data is None:
        data = (rng.random((12, 12, 10, 8)) * 1000 + 100).astype(dtype)
    if affine is None:
        affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), path)
    stem = path[: -len(".nii.gz")]
    if bvals is None:
        bvals = [0] + [1000] * (data.shape[3] - 1) if data.ndim == 4 else [0]
    if bvecs is None:
        d = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.7, 0.7, 0], [0.7, 0, 0.7], [0, 0.7, 0.7], [0.6, 0.6, 0.5]])
        bvecs = np.vstack([[0, 0, 0], d[: len(bvals) - 1]]).T
    with open(stem + ".bval", "w") as f:
        f.write(" ".join(str(b) for b in bvals) + "\n")
    with open(stem + ".bvec", "w") as f:
        f.write("\n".join(" ".join(str(x) for x in row) for row in np.atleast_2d(bvecs)) + "\n")
    return path


def mk(name):
    return os.path.join(W, name)


def case_files():
    """(name, args, expected exit, text the one error line must contain)."""
    good = write_dwi(mk("good.nii.gz"))
    cases = []
    out = lambda n: ["-o", mk("out_" + n)]  # noqa: E731
    cases.append(("missing dwi", ["recon", mk("nope.nii.gz")] + out("missing"), 3, "nope.nii.gz"))
    raw = open(good, "rb").read()
    open(mk("trunc.nii.gz"), "wb").write(raw[: len(raw) // 2])
    cases.append(("truncated gzip", ["recon", mk("trunc.nii.gz")] + out("trunc"), 3, "trunc.nii.gz"))
    corrupt = bytearray(raw)
    for i in range(len(corrupt) // 3, len(corrupt) // 3 + 64):
        corrupt[i] ^= 0x5A
    open(mk("corrupt.nii.gz"), "wb").write(bytes(corrupt))
    cases.append(("corrupted gzip", ["recon", mk("corrupt.nii.gz")] + out("corrupt"), 3, "corrupt.nii.gz"))
    open(mk("text.nii.gz"), "wb").write(b"hello, not an image\n")
    cases.append(("not NIfTI", ["recon", mk("text.nii.gz")] + out("text"), 3, "text.nii.gz"))
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2000, 2000, 2000, 500))
    hdr.set_data_dtype(np.float32)
    blob = hdr.binaryblock + b"\0" * 4 + b"\0" * 1024
    open(mk("absurd.nii"), "wb").write(blob)
    cases.append(("absurd dimensions", ["info", mk("absurd.nii")], 3, "absurd.nii"))
    with gzip.open(mk("absurd.nii.gz"), "wb") as f:
        f.write(blob)
    cases.append(("absurd dimensions, gzipped, in recon", ["recon", mk("absurd.nii.gz")] + out("absurd"), 3, "absurd.nii.gz"))
    neg = nib.Nifti1Header()
    neg.set_data_shape((12, 12, 10, 8))
    nblk = bytearray(neg.binaryblock)
    nblk[42:44] = (-5).to_bytes(2, "little", signed=True)  # dim[1]
    open(mk("negdim.nii"), "wb").write(bytes(nblk) + b"\0" * 4 + b"\0" * 4096)
    cases.append(("negative dimension", ["info", mk("negdim.nii")], 3, "negdim.nii"))
    nblk[40:42] = (9).to_bytes(2, "little", signed=True)  # dim[0]: NIfTI has at most 7
    with gzip.open(mk("ndim9.nii.gz"), "wb") as f:
        f.write(bytes(nblk) + b"\0" * 4 + b"\0" * 4096)
    cases.append(("dim[0] beyond 7", ["recon", mk("ndim9.nii.gz")] + out("ndim9"), 3, "ndim9.nii.gz"))
    img = nib.load(good)
    for label, zooms in [("zero voxel size", (0, 2, 2, 1)), ("NaN voxel size", (float("nan"), 2, 2, 1))]:
        h = img.header.copy()
        h.set_sform(None, code=0)
        h.set_qform(None, code=0)
        blk = bytearray(h.binaryblock)
        pix = np.frombuffer(bytes(blk[76:108]), "<f4").copy()
        pix[1:5] = zooms
        blk[76:108] = pix.tobytes()
        name = label.replace(" ", "_") + ".nii.gz"
        with gzip.open(mk(name), "wb") as f:
            f.write(bytes(blk) + b"\0" * 4 + np.asarray(img.dataobj).astype("<i2").tobytes(order="F"))
        cases.append((label, ["info", mk(name)], 3, name))
    sing = np.diag([2.0, 2.0, 2.0, 1.0])
    sing[:3, 2] = sing[:3, 0]
    write_dwi(mk("singular.nii.gz"), affine=sing)
    cases.append(("singular affine", ["info", mk("singular.nii.gz")], 3, "singular.nii.gz"))
    nib.save(nib.Nifti1Image(np.ones((12, 12, 10), np.float32), np.eye(4)), mk("t1.nii.gz"))
    cases.append(("3D image", ["recon", mk("t1.nii.gz")] + out("t1"), 3, "t1.nii.gz"))
    write_dwi(mk("zeros.nii.gz"), data=np.zeros((12, 12, 10, 8), np.int16))
    cases.append(("all-zero image", ["recon", mk("zeros.nii.gz")] + out("zeros"), 3, "zeros.nii.gz"))
    d = np.asarray(img.dataobj).astype(np.float32)
    d[3, 4, 5, 2] = np.nan
    write_dwi(mk("nan.nii.gz"), data=d, dtype=np.float32)
    cases.append(("NaN voxels", ["recon", mk("nan.nii.gz")] + out("nan"), 3, "nan.nii.gz"))
    d[3, 4, 5, 2] = np.inf
    write_dwi(mk("inf.nii.gz"), data=d, dtype=np.float32)
    cases.append(("Inf voxels", ["recon", mk("inf.nii.gz")] + out("inf"), 3, "inf.nii.gz"))
    write_dwi(mk("count.nii.gz"), bvals=[0, 1000, 1000])
    cases.append(("bval/bvec count mismatch", ["recon", mk("count.nii.gz")] + out("count"), 3, "count.b"))
    write_dwi(mk("words.nii.gz"))
    open(mk("words.bval"), "w").write("0 1000 one 1000 1000 1000 1000 1000\n")
    cases.append(("non-numeric bval", ["recon", mk("words.nii.gz")] + out("words"), 3, "words.bval"))
    write_dwi(mk("vecword.nii.gz"))
    open(mk("vecword.bvec"), "w").write("0 1 0 0 x 0 0 0\n" * 3)
    cases.append(("non-numeric bvec", ["recon", mk("vecword.nii.gz")] + out("vecword"), 3, "vecword.bvec"))
    dirs = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.7, 0.7, 0], [0.7, 0, 0.7], [0, 0.7, 0.7], [0.6, 0.6, 0.5], [0.5, -0.5, 0.7]]).T
    write_dwi(mk("nob0.nii.gz"), bvals=[1000] * 8, bvecs=dirs)
    cases.append(("no b0", ["recon", mk("nob0.nii.gz")] + out("nob0"), 3, "nob0.bval"))
    few = np.array([[0, 0, 0]] + [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]).T
    write_dwi(mk("few.nii.gz"), bvecs=few)
    cases.append(("fewer than 6 directions", ["recon", mk("few.nii.gz")] + out("few"), 3, "few.bvec"))
    zero = few.copy()
    zero[:, 3] = 0
    write_dwi(mk("zerovec.nii.gz"), bvecs=zero)
    cases.append(("zero b-vector on a DW volume", ["recon", mk("zerovec.nii.gz")] + out("zerovec"), 3, "zerovec.bvec"))
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.diag([-2.0, 2, 2, 1])), mk("maskgrid.nii.gz"))
    cases.append(("mask on another grid", ["recon", good, "--mask", mk("maskgrid.nii.gz")] + out("maskgrid"), 3, "maskgrid.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros((12, 12, 10), np.uint8), np.diag([-2.0, 2, 2, 1])), mk("emptymask.nii.gz"))
    cases.append(("empty mask", ["recon", good, "--mask", mk("emptymask.nii.gz")] + out("emptymask"), 3, "emptymask.nii.gz"))
    os.makedirs(mk("nobval"), exist_ok=True)
    shutil.copy(good, mk("nobval/dwi.nii.gz"))
    cases.append(("missing bval sidecar", ["recon", mk("nobval/dwi.nii.gz")] + out("nobval"), 3, "dwi.bval"))
    open(mk("noarrays.gii"), "w").write('<?xml version="1.0"?><GIFTI Version="1.0" NumberOfDataArrays="0"></GIFTI>')
    cases.append(("GIFTI without arrays", ["convert", mk("noarrays.gii"), mk("o1.gii")], 3, "noarrays.gii"))
    open(mk("intent.gii"), "w").write(
        '<GIFTI Version="1.0"><DataArray Intent="NIFTI_INTENT_SHAPE" DataType="NIFTI_TYPE_FLOAT32" '
        'Dimensionality="1" Dim0="3" Encoding="ASCII"><Data>1 2 3</Data></DataArray></GIFTI>')
    cases.append(("GIFTI with wrong intents", ["convert", mk("intent.gii"), mk("o2.gii")], 3, "intent.gii"))
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
    nib.freesurfer.write_geometry(mk("lh.liar"), v, f)
    b = bytearray(open(mk("lh.liar"), "rb").read())
    at = b.index(b"\n\n") + 2
    b[at:at + 4] = (10**8).to_bytes(4, "big")
    open(mk("lh.liar"), "wb").write(bytes(b))
    cases.append(("FreeSurfer counts beyond the file", ["convert", mk("lh.liar"), mk("o3.gii")], 3, "lh.liar"))
    open(mk("afile"), "w").write("x")
    nib.freesurfer.write_geometry(mk("lh.ok"), v, f)
    cases.append(("output under a file", ["convert", mk("lh.ok"), mk("afile/o.gii")], 3, "afile"))
    full = mk("fulldisk")
    os.makedirs(full, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full], capture_output=True).returncode == 0:
        big = os.path.join(SOURCE, "data", "fsaverage5", "white_left.gii.gz")
        cases.append(("full output disk", ["convert", big, os.path.join(full, "lh.white")], 3, "lh.white"))
    else:
        print("note: cannot mount a tmpfs (not root); the full disk is simulated by RLIMIT_FSIZE only")
    # A full disk without mounting: a 64 kB file size limit (with SIGXFSZ ignored, writes past it
    # fail with EFBIG as they would with ENOSPC).
    big = os.path.join(SOURCE, "data", "fsaverage5", "white_left.gii.gz")
    cases.append(("file size limit (disk full)", ["convert", big, mk("fsize/lh.white")], 3, "lh.white", 64 << 10))
    open(mk("other.pt"), "wb").write(b"PK\x03\x04 not a torchscript archive")
    cases.append(("model of another kind", ["recon", good, "--model", mk("other.pt")] + out("model"), 3, "other.pt"))
    # A loadable TorchScript model whose metadata names another architecture: the shipped model's
    # archive with only extra/metadata.json changed (zip members copied byte for byte).
    with zipfile.ZipFile(MODEL) as zin, zipfile.ZipFile(mk("arch.pt"), "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("extra/metadata.json"):
                meta = json.loads(data)
                meta["architecture"] = "resnet3d"
                data = json.dumps(meta, indent=1).encode()
            zout.writestr(item, data)
    cases.append(("model of another architecture", ["recon", good, "--model", mk("arch.pt")] + out("arch"), 3, "arch.pt"))
    with zipfile.ZipFile(MODEL) as zin, zipfile.ZipFile(mk("nometa.pt"), "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            if not item.filename.endswith("extra/metadata.json"):
                zout.writestr(item, zin.read(item))
    cases.append(("TorchScript model without metadata", ["recon", good, "--model", mk("nometa.pt")] + out("nometa"), 3, "nometa.pt"))
    # Unwritable output folder: permissions do not stop root, a read-only file system does.
    cases.append(("unwritable output folder", ["recon", good, "-o", "/proc/ddcsr-out/subj"], 3, "/proc"))
    open(mk("list.tsv"), "w").write("subject\tpath\ns1\tx.nii.gz\n")
    cases.append(("subject list without columns", ["recon", "--subjects", mk("list.tsv"), "-o", mk("out_list")], 3, "list.tsv"))
    cases.append(("DWI and a list at once", ["recon", good, "--subjects", mk("list.tsv"), "-o", mk("out_both")], 2, None))
    cases.append(("unknown hemisphere", ["recon", good, "--hemi", "both-ish", "-o", mk("out_hemi")], 2, None))
    return cases


def limits(fsize=None):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
        if fsize:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return apply


# Peak memory of any case: the process's own start (LibTorch, ITK: ~200 MB) plus small inputs. An
# absurd header must be refused before its voxels are allocated, not by running out of memory.
MAX_RSS_MB = 600


require_model()
cases = case_files()
print(f"{len(cases)} broken inputs")
os.makedirs(mk("fsize"), exist_ok=True)
for name, args, expect, needle, *fsize in cases:
    proc = subprocess.Popen([DDCSR, "-q"] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limits(*fsize))
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_mb = usage.ru_maxrss / 1024
    lines = [l for l in stderr.splitlines() if l.strip()]
    ok = proc.returncode == expect and rss_mb < MAX_RSS_MB
    if expect == 3:
        ok = ok and len(lines) == 1 and needle in lines[0]
    outs = [a for a in args if a.startswith(mk("out_"))]
    leftovers = [o for o in outs if os.path.exists(o)]
    ok = ok and not leftovers
    check(ok, f"{name}: exit {proc.returncode}, {rss_mb:.0f} MB | {lines[-1] if lines else ''}")
if os.path.ismount(mk("fulldisk")):
    check(not os.listdir(mk("fulldisk")), f"full disk: no files left {os.listdir(mk('fulldisk'))}")
    subprocess.run(["umount", mk("fulldisk")])
for o in ["o1.gii", "o2.gii", "o3.gii"]:
    check(not os.path.exists(mk(o)), "no output written: " + o)
check(not os.listdir(mk("fsize")), f"file size limit: no files left {os.listdir(mk('fsize'))}")
check(not os.path.exists("/proc/ddcsr-out"), "no output created under /proc")
temps = [f for f in os.listdir(W) if ".tmp-" in f]
check(not temps, f"no temporary files left: {temps}")
finish()
