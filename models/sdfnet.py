#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""SDFNet: the network that maps ddcsr's diffusion features to four signed distance maps (mm).

The architecture is defined here, once, and exported as TorchScript; `ddcsr train` trains the
exported module's parameters in C++ and `ddcsr recon` runs it, so Python is never needed at run
time. Run with Debian's python3-torch (`/usr/bin/python3 models/sdfnet.py export ...`).

Design choices that the C++ side relies on:
  * Every layer is spatially local at inference (BatchNorm with running statistics, additive
    attention gates, a spatial-attention map computed by convolution): a voxel's output depends
    only on its neighbourhood, so sliding-window inference reproduces whole-volume inference and a
    model trained on patches sees the same statistics on a whole brain. Instance/GroupNorm would
    normalise by statistics of whatever crop it is given, which differ between training patches
    and whole volumes.
  * Input sizes must be multiples of 2**levels (`size_multiple` in the metadata); the C++ side
    pads. Input normalisation (per-channel mean/std) lives in buffers inside the model, so a
    model file carries its own normalisation.
  * The output is out_range_mm * tanh(raw / out_range_mm): linear (1 mm per unit) near surfaces
    and bounded far from them.
  * Metadata is a JSON document stored in the archive as `extra/metadata.json`
    (torch.jit.save `_extra_files`).
"""
import argparse
import json
import sys
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHITECTURE = "ddcsr-attention-unet3d"
ARCHITECTURE_VERSION = 1
FORMAT = "ddcsr-sdfnet"
FORMAT_VERSION = 1
OUTPUTS = ["lh.white", "lh.pial", "rh.white", "rh.pial"]


class Conv(nn.Module):
    """A 3D convolution that calls oneDNN directly on CPU.

    LibTorch 1.13's CPU dispatcher sends batch-1 convolutions on small tensors (and every 1x1x1
    convolution on one thread) to its "slow" im2col + BLAS path, which is 10x slower with Debian's
    reference BLAS and dominates whole-volume inference. oneDNN gives the same result (within
    float rounding) and the gradient is the usual convolution backward. Other devices use conv3d.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(cout)) if bias else None
        self.padding = [kernel // 2 if stride == 1 else 0] * 3
        self.stride = [stride] * 3
        fan_in = cin * kernel ** 3
        nn.init.kaiming_uniform_(self.weight, a=0.1)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -1.0 / fan_in ** 0.5, 1.0 / fan_in ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32:
            return torch.mkldnn_convolution(x, self.weight, self.bias, self.padding, self.stride,
                                            [1, 1, 1], 1)
        return F.conv3d(x, self.weight, self.bias, self.stride, self.padding)


class ConvBlock(nn.Module):
    """Two 3x3x3 convolutions with BatchNorm and LeakyReLU; residual when the widths match."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = Conv(cin, cout, 3, bias=False)
        self.norm1 = nn.BatchNorm3d(cout)
        self.conv2 = Conv(cout, cout, 3, bias=False)
        self.norm2 = nn.BatchNorm3d(cout)
        self.residual = cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.norm1(self.conv1(x)), 0.1)
        y = self.norm2(self.conv2(y))
        if self.residual:
            y = y + x
        return F.leaky_relu(y, 0.1)


class Up(nn.Module):
    """Channel reduction at the coarse level, then nearest-neighbour doubling: the 1x1x1
    convolution costs an eighth of what it would after upsampling, and LibTorch's CPU transposed
    3D convolution has no oneDNN path."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = Conv(cin, cout, 1, bias=False)
        self.norm = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.norm(self.conv(x)), 0.1)
        return F.interpolate(y, scale_factor=2.0, mode="nearest")


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018, Attention U-Net): the coarser decoder signal
    decides, voxel by voxel, how much of the encoder's skip features pass. As in the paper, the
    coefficients are computed at the coarse level (strided theta) and upsampled, which keeps the
    full-resolution cost to one multiplication."""

    def __init__(self, skip_ch: int, gate_ch: int, inter_ch: int):
        super().__init__()
        self.theta = Conv(skip_ch, inter_ch, 2, stride=2, bias=False)
        self.phi = Conv(gate_ch, inter_ch, 1)
        self.psi = Conv(inter_ch, 1, 1)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.theta(skip) + self.phi(gate))
        alpha = F.interpolate(torch.sigmoid(self.psi(a)), scale_factor=2.0, mode="trilinear",
                              align_corners=False)
        return skip * alpha


class SpatialAttention(nn.Module):
    """Bottleneck spatial attention (CBAM's spatial branch, Woo et al. 2018): a map from the
    channel mean and max, convolved over a wide neighbourhood. Local, unlike self-attention over
    all voxels, so patches and whole volumes agree."""

    def __init__(self, kernel: int = 3):
        super().__init__()
        self.conv = Conv(2, 1, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class SDFNet(nn.Module):
    def __init__(self, in_channels: int, width: int = 12, levels: int = 4,
                 out_range_mm: float = 24.0, max_width: int = 96):
        super().__init__()
        widths = [min(width * 2 ** i, max_width) for i in range(levels + 1)]
        self.levels = levels
        self.out_range_mm = out_range_mm
        self.output_gain = 10.0
        self.register_buffer("input_mean", torch.zeros(1, in_channels, 1, 1, 1))
        self.register_buffer("input_std", torch.ones(1, in_channels, 1, 1, 1))
        self.enc = nn.ModuleList([ConvBlock(in_channels if i == 0 else widths[i - 1], widths[i])
                                  for i in range(levels)])
        self.bottom = ConvBlock(widths[levels - 1], widths[levels])
        self.down = nn.ModuleList([Conv(widths[i], widths[i], 2, stride=2, bias=False)
                                   for i in range(levels)])
        self.bottleneck_attention = SpatialAttention(3)
        # Decoder modules are stored coarsest first: TorchScript iterates ModuleLists forwards only.
        coarse_first = list(reversed(range(levels)))
        self.up = nn.ModuleList([Up(widths[i + 1], widths[i]) for i in coarse_first])
        self.gates = nn.ModuleList([AttentionGate(widths[i], widths[i + 1], max(widths[i] // 2, 4))
                                    for i in coarse_first])
        self.dec = nn.ModuleList([ConvBlock(2 * widths[i], widths[i]) for i in coarse_first])
        self.head = Conv(widths[0], len(OUTPUTS), 1)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean) / self.input_std
        skips: List[torch.Tensor] = []
        for enc, down in zip(self.enc, self.down):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.bottom(x)
        x = self.bottleneck_attention(x)
        for j, (up, gate, dec) in enumerate(zip(self.up, self.gates, self.dec)):
            s = gate(skips[self.levels - 1 - j], x)
            g = up(x)
            x = dec(torch.cat([s, g], dim=1))
        # The gain lets Adam's per-parameter steps move outputs by millimetres, not by 1/lr steps.
        return self.out_range_mm * torch.tanh(self.head(x) * (self.output_gain / self.out_range_mm))


def metadata(channels: List[str], width: int, levels: int, out_range_mm: float,
             grid_spacing_mm: float, lr_signed: List[str]) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "architecture_version": ARCHITECTURE_VERSION,
        "input_channels": channels,
        "lr_signed_channels": lr_signed,
        "grid_spacing_mm": grid_spacing_mm,
        "size_multiple": 2 ** levels,
        "normalisation": "per-channel (x - input_mean[c]) / input_std[c], buffers inside the "
                         "model, set by ddcsr train from the training features",
        "outputs": OUTPUTS,
        "output_units": "mm",
        "sign_convention": "negative inside the surface, positive outside",
        "output_range_mm": out_range_mm,
        "width": width,
        "levels": levels,
        "trained": False,
        "training": {},
    }


def build(channels: List[str], width: int, levels: int, out_range_mm: float, seed: int):
    torch.manual_seed(seed)
    model = SDFNet(len(channels), width=width, levels=levels, out_range_mm=out_range_mm)
    model.eval()
    return torch.jit.script(model)


def export(args) -> None:
    channels = [c for c in args.channels.split(",") if c]
    if not channels or len(set(channels)) != len(channels):
        sys.exit("sdfnet.py: --channels needs distinct, non-empty names")
    # ddcsr's midline feature is signed left-right (feature_lr_signed_channel_names in C++).
    lr_signed = ([c for c in args.lr_signed.split(",") if c] if args.lr_signed is not None
                 else [c for c in channels if c == "midline"])
    for c in lr_signed:
        if c not in channels:
            sys.exit(f"sdfnet.py: left-right signed channel {c!r} is not an input channel")
    scripted = build(channels, args.width, args.levels, args.out_range, args.seed)
    meta = metadata(channels, args.width, args.levels, args.out_range, args.spacing, lr_signed)
    if args.architecture:  # only for tests that need a model of a foreign architecture
        meta["architecture"] = args.architecture
    torch.jit.save(scripted, args.output, _extra_files={"metadata.json": json.dumps(meta, indent=1)})
    nparams = sum(p.numel() for p in scripted.parameters())
    print(f"wrote {args.output}: {nparams} parameters, channels {channels}")


def info(args) -> None:
    extra = {"metadata.json": ""}
    model = torch.jit.load(args.model, _extra_files=extra)
    print(extra["metadata.json"])
    print("parameters:", sum(p.numel() for p in model.parameters()))


def bench(args) -> None:
    import time
    import resource
    torch.set_num_threads(args.threads)
    channels = [f"c{i}" for i in range(args.in_channels)]
    model = build(channels, args.width, args.levels, 24.0, 0)
    x = torch.randn(1, args.in_channels, *args.shape)
    with torch.no_grad():
        t = time.time()
        y = model(x)
        print(f"{args.shape} width {args.width}: {time.time() - t:.2f} s, out {tuple(y.shape)}, "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("export", help="write an untrained TorchScript model with its metadata")
    p.add_argument("--channels", required=True, help="comma-separated input channel names, in order")
    p.add_argument("--lr-signed", default=None,
                   help="channels whose sign flips under a left-right mirror (default: midline)")
    p.add_argument("--width", type=int, default=12, help="channels at full resolution")
    p.add_argument("--levels", type=int, default=4, help="number of 2x downsamplings")
    p.add_argument("--out-range", type=float, default=24.0, help="output bound in mm (tanh)")
    p.add_argument("--spacing", type=float, default=1.0, help="grid spacing of the features in mm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--architecture", default="", help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(fn=export)
    p = sub.add_parser("info", help="print a model's metadata")
    p.add_argument("model")
    p.set_defaults(fn=info)
    p = sub.add_parser("bench", help="time one forward pass on random input")
    p.add_argument("--shape", type=int, nargs=3, default=[160, 192, 160])
    p.add_argument("--in-channels", type=int, default=6)
    p.add_argument("--width", type=int, default=12)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(fn=bench)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
