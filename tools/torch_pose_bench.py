#!/usr/bin/env python3
"""The pose model of a dypose config, rebuilt in PyTorch, and its training/inference speed.

Builds the same network as `dypose` does from a config's `model` section (src/model/blueprint.rs):
ResNet-10/18, MobileNetV2 or MobileNetV3-Small (width multiplier), static or dynamic (K kernels mixed per sample by
an attention branch: global average pool -> FC(Cin -> max(1, Cin // 4)) -> ReLU -> FC(-> K) ->
softmax(z / tau)); the SimpleBaseline deconv head or the light head; the final 1x1 conv static.
Dynamic layers as dypose's blueprints make them: every conv except the stem (and MobileNetV2's 1x1 to 1280);
ResNet shortcuts only with `dynamic_shortcut`.

Then it times, like `dypose bench model`, the median over --iters of
  inference: forward in eval mode under no_grad, output copied to the host;
  training:  forward in train mode + MSE against a random target + backward (no optimiser step),
with the device synchronised, in fp32 (TF32 off unless --tf32), at each --batch.

  python tools/torch_pose_bench.py --config configs/dy_resnet18_coco.json --batch 32 64 [--device cuda]

The parameter count it prints equals `dypose info --config C --json`'s "params" (same layers);
--check-params N exits with an error when it does not. The last line is JSON.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_divisible(v, divisor=8):
    """torchvision's _make_divisible (the same rule as dypose's blueprint)."""
    n = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if n < 0.9 * v:
        n += divisor
    return n


class Attention(nn.Module):
    """Per-sample softmax weights over the K kernels from the layer's input."""

    def __init__(self, cin, k):
        super().__init__()
        hidden = max(1, cin // 4)
        self.fc1 = nn.Linear(cin, hidden)
        self.fc2 = nn.Linear(hidden, k)
        self.temperature = 1.0

    def forward(self, x):
        z = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3)))))
        return F.softmax(z / self.temperature, dim=1)


class DynamicConv2d(nn.Module):
    """K kernels aggregated per sample, applied as one grouped convolution over the batch."""

    def __init__(self, cin, cout, kernel, stride, padding, groups=1, bias=False, k=4, transposed=False):
        super().__init__()
        self.cin, self.cout, self.stride, self.padding = cin, cout, stride, padding
        self.groups, self.k, self.transposed = groups, k, transposed
        shape = (cin, cout // groups, kernel, kernel) if transposed else (cout, cin // groups, kernel, kernel)
        self.weight = nn.Parameter(torch.empty(k, *shape))
        for i in range(k):  # independent initialisation of each kernel
            nn.init.kaiming_uniform_(self.weight[i], a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(k, cout)) if bias else None
        self.attention = Attention(cin, k)

    def forward(self, x):
        b, _, h, w = x.shape
        pi = self.attention(x)  # B x K
        weight = torch.einsum("bk,k...->b...", pi, self.weight)
        weight = weight.reshape(b * weight.shape[1], *weight.shape[2:])
        bias = (pi @ self.bias).reshape(-1) if self.bias is not None else None
        x = x.reshape(1, b * self.cin, h, w)
        if self.transposed:
            y = F.conv_transpose2d(x, weight, bias, self.stride, self.padding, groups=b * self.groups)
        else:
            y = F.conv2d(x, weight, bias, self.stride, self.padding, groups=b * self.groups)
        return y.reshape(b, self.cout, *y.shape[2:])


def conv(cin, cout, kernel, stride, padding=None, groups=1, bias=False, dynamic=False, k=4, transposed=False):
    padding = kernel // 2 if padding is None else padding
    if dynamic:
        return DynamicConv2d(cin, cout, kernel, stride, padding, groups, bias, k, transposed)
    if transposed:
        return nn.ConvTranspose2d(cin, cout, kernel, stride, padding, groups=groups, bias=bias)
    return nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=bias)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, dynamic, dynamic_shortcut, k):
        super().__init__()
        self.conv1 = conv(cin, cout, 3, stride, dynamic=dynamic, k=k)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, 3, 1, dynamic=dynamic, k=k)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                conv(cin, cout, 1, stride, padding=0, dynamic=dynamic and dynamic_shortcut, k=k), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


def resnet(depth, width, dynamic, dynamic_shortcut, k):
    ch = lambda c: make_divisible(c * width)
    blocks = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2]}[depth]
    layers = [conv(3, ch(64), 7, 2), nn.BatchNorm2d(ch(64)), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    cin = ch(64)
    for i, (n, cout) in enumerate(zip(blocks, [ch(64), ch(128), ch(256), ch(512)])):
        for j in range(n):
            layers.append(BasicBlock(cin, cout, 2 if j == 0 and i > 0 else 1, dynamic, dynamic_shortcut, k))
            cin = cout
    return nn.Sequential(*layers), cin


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t, dynamic, k):
        super().__init__()
        hidden = cin * t
        layers = []
        if t != 1:
            layers += [conv(cin, hidden, 1, 1, 0, dynamic=dynamic, k=k), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            conv(hidden, hidden, 3, stride, groups=hidden, dynamic=dynamic, k=k),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            conv(hidden, cout, 1, 1, 0, dynamic=dynamic, k=k),
            nn.BatchNorm2d(cout),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2(width, dynamic, k):
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    cin = make_divisible(32 * width)
    layers = [conv(3, cin, 3, 2), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True)]
    for t, c, n, s in settings:
        cout = make_divisible(c * width)
        for i in range(n):
            layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, dynamic, k))
            cin = cout
    last = make_divisible(1280 * max(width, 1.0))
    layers += [conv(cin, last, 1, 1, 0), nn.BatchNorm2d(last), nn.ReLU6(inplace=True)]
    return nn.Sequential(*layers), last


class SqueezeExcitation(nn.Module):
    """torchvision's: pool, 1x1 conv -> ReLU, 1x1 conv -> hard-sigmoid, scale the channels."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * s


class InvertedResidualV3(nn.Module):
    """MobileNetV3's block: [1x1 expand, BN, act], kxk depthwise, BN, act, [SE], 1x1 project, BN."""

    def __init__(self, cin, hidden, cout, kernel, se, act, stride, dynamic, k):
        super().__init__()
        layers = []
        if hidden != cin:
            layers += [conv(cin, hidden, 1, 1, 0, dynamic=dynamic, k=k), nn.BatchNorm2d(hidden, 1e-3, 0.01), act()]
        layers += [conv(hidden, hidden, kernel, stride, groups=hidden, dynamic=dynamic, k=k),
                   nn.BatchNorm2d(hidden, 1e-3, 0.01), act()]
        if se:
            layers.append(SqueezeExcitation(hidden, make_divisible(hidden // 4)))
        layers += [conv(hidden, cout, 1, 1, 0, dynamic=dynamic, k=k), nn.BatchNorm2d(cout, 1e-3, 0.01)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v3_small(width, dynamic, k):
    """torchvision's MobileNetV3-Small features (as src/model/blueprint.rs's `mobilenet_v3_small`)."""
    RE, HS = nn.ReLU, nn.Hardswish
    settings = [(3, 16, 16, True, RE, 2), (3, 72, 24, False, RE, 2), (3, 88, 24, False, RE, 1),
                (5, 96, 40, True, HS, 2), (5, 240, 40, True, HS, 1), (5, 240, 40, True, HS, 1),
                (5, 120, 48, True, HS, 1), (5, 144, 48, True, HS, 1), (5, 288, 96, True, HS, 2),
                (5, 576, 96, True, HS, 1), (5, 576, 96, True, HS, 1)]
    ch = lambda c: make_divisible(c * width)
    cin = ch(16)
    layers = [conv(3, cin, 3, 2), nn.BatchNorm2d(cin, 1e-3, 0.01), HS()]
    for kernel, e, out, se, act, stride in settings:
        layers.append(InvertedResidualV3(cin, ch(e), ch(out), kernel, se, act, stride, dynamic, k))
        cin = ch(out)
    last = 6 * cin
    layers += [conv(cin, last, 1, 1, 0, dynamic=dynamic, k=k), nn.BatchNorm2d(last, 1e-3, 0.01), HS()]
    return nn.Sequential(*layers), last


def deconv_head(cin, channels, n, joints, dynamic, k):
    layers = []
    for _ in range(n):
        layers += [
            conv(cin, channels, 4, 2, 1, dynamic=dynamic, k=k, transposed=True),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
        cin = channels
    return nn.Sequential(*layers, nn.Conv2d(cin, joints, 1, bias=True))


def light_head(cin, channels, n, joints, dynamic, k):
    layers = []
    for _ in range(n):
        layers += [
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            conv(cin, cin, 3, 1, groups=cin, dynamic=dynamic, k=k),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            conv(cin, channels, 1, 1, 0, dynamic=dynamic, k=k),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
        cin = channels
    return nn.Sequential(*layers, nn.Conv2d(cin, joints, 1, bias=True))


def build(model_cfg):
    """The network of a dypose config's `model` section (same defaults as src/config.rs)."""
    m = {"arch": "dy-resnet18", "width": 1.0, "head": "deconv", "head_channels": 256, "head_layers": 3,
         "dynamic_head": None, "dynamic_shortcut": False, "kernels": 4, "joints": 17, **model_cfg}
    dynamic = m["arch"].startswith("dy-")
    base = m["arch"].removeprefix("dy-")
    k = m["kernels"]
    if base in ("resnet10", "resnet18"):
        backbone, cout = resnet(int(base[6:]), m["width"], dynamic, m["dynamic_shortcut"], k)
    elif base == "mobilenetv2":
        backbone, cout = mobilenet_v2(m["width"], dynamic, k)
    elif base == "mobilenetv3-small":
        backbone, cout = mobilenet_v3_small(m["width"], dynamic, k)
    else:
        sys.exit(f"model.arch: unknown architecture {m['arch']!r}")
    head_dynamic = dynamic if m["dynamic_head"] is None else m["dynamic_head"]
    make_head = {"deconv": deconv_head, "light": light_head}[m["head"]]
    head = make_head(cout, m["head_channels"], m["head_layers"], m["joints"], head_dynamic, k)
    return nn.Sequential(backbone, head)


def timed(fn, iters, device):
    fn()  # warm-up (cuDNN autotuning, allocator)
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a dypose config (its model section and input_size)")
    ap.add_argument("--batch", type=int, nargs="+", default=[32])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in convs and matmuls (dypose runs fp32)")
    ap.add_argument("--check-params", type=int, help="fail unless the parameter count equals this")
    args = ap.parse_args()

    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    with open(args.config) as f:
        cfg = json.load(f)
    w, h = cfg.get("input_size", [192, 256])
    device = torch.device(args.device)
    torch.manual_seed(cfg.get("seed", 0))
    net = build(cfg.get("model", {})).to(device)
    params = sum(p.numel() for p in net.parameters())
    print(f"{cfg.get('model', {}).get('arch', 'dy-resnet18')} at {h}x{w} (h x w) on {device} "
          f"(torch {torch.__version__}): {params / 1e6:.3f} M parameters")
    if args.check_params is not None and params != args.check_params:
        sys.exit(f"parameter count {params} differs from the expected {args.check_params}")

    rows = []
    print(f"{'batch':>6} {'inference img/s':>16} {'training img/s':>15} {'peak GPU MB':>12}")
    for b in args.batch:
        x = torch.randn(b, 3, h, w, device=device)
        with torch.no_grad():
            out_shape = net.eval()(x[:1]).shape
        target = torch.randn(b, *out_shape[1:], device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

        def infer():
            with torch.no_grad():
                net.eval()(x).cpu()

        def train():
            net.train()
            net.zero_grad(set_to_none=True)
            F.mse_loss(net(x), target).backward()

        ti, tt = timed(infer, args.iters, device), timed(train, args.iters, device)
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
        rows.append({"batch": b, "inference_img_per_s": b / ti, "training_img_per_s": b / tt, "peak_gpu_mb": peak})
        print(f"{b:>6} {b / ti:>16.1f} {b / tt:>15.1f} {peak if peak is not None else float('nan'):>12.0f}")
    print(json.dumps({"params": params, "device": str(device), "torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
