"""One deformable layer, forward + backward, on this CPU: attention/deformable.py's written-out
sampling against torchvision.ops.deform_conv2d, at the two shapes of ResNet-20's deformable stage 3
(batch 128). Run from the repository root: .venv/bin/python results/bench/deformable_sampling_cpu/bench.py"""

import platform
import time

import torch
from torchvision.ops import deform_conv2d

from attention_zoo.attention.deformable import deformable_convolution

torch.manual_seed(0)
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
for shape, stride in [((128, 64, 8, 8), 1), ((128, 32, 16, 16), 2)]:
    x = torch.randn(*shape, requires_grad=True)
    weight = torch.randn(64, shape[1], 3, 3, requires_grad=True)
    offsets = torch.randn(shape[0], 18, 8, 8, requires_grad=True)
    mask = torch.rand(shape[0], 9, 8, 8, requires_grad=True)
    layers = {
        "torchvision deform_conv2d": lambda: deform_conv2d(x, offsets, weight, stride=stride, padding=1, mask=mask),
        "attention_zoo grid_sample": lambda: deformable_convolution(x, offsets, weight, stride, 1, mask),
    }
    for name, layer in layers.items():
        for _ in range(2):  # warm-up
            layer().sum().backward()
        start = time.perf_counter()
        for _ in range(5):
            layer().sum().backward()
        print(f"input {shape}, stride {stride}: {name}: {(time.perf_counter() - start) / 5:.3f} s forward + backward")
