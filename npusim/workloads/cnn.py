"""Convolutional network builders: ResNet-50 v1.5 and MobileNet-V2 as workload IR.

Shapes follow torchvision (``resnet50``, ``mobilenet_v2``), NHWC, batch as a parameter.
Conventions shared by both builders:

* BatchNorm is folded into the preceding convolution (inference), and the ReLU / ReLU6 that
  follows it is fused as the convolution's ``activation``.
* A residual connection is one :class:`Elementwise` ``add`` of two operands. In ResNet the
  ReLU after the add is fused into it: its one ALU op per element is not counted separately
  (the add layer already reads and writes the tensor once).
* The classifier is a :class:`Matmul` with ``b_kind="weight"``, M = batch.

MACs at 224x224, batch 1: ResNet-50 4.09 G (torchvision reports 4.09 GMACs), MobileNet-V2
0.30 G (torchvision reports 0.30 GFLOPS, meaning multiply-adds).
"""

from __future__ import annotations

from npusim.workloads.ir import Conv2d, Elementwise, Layer, Matmul, Pool, Workload

__all__ = ["mobilenet_v2", "resnet50"]


class _Net:
    """Accumulates layers while tracking the current activation shape (H, W, C)."""

    def __init__(self, batch: int, image: int, channels: int, precision: str) -> None:
        if batch <= 0 or image <= 0:
            raise ValueError(f"batch and image must be positive (got {batch}, {image})")
        self.batch = batch
        self.h = self.w = image
        self.c = channels
        self.precision = precision
        self.layers: list[Layer] = []

    def conv(self, name: str, out_c: int, kernel: int, stride: int = 1, groups: int = 1,
             activation: str | None = None, *, shape: tuple[int, int, int] | None = None,
             update: bool = True) -> Conv2d:
        """A square conv with 'same' padding (kernel // 2) from ``shape`` or the current one."""
        h, w, c = shape if shape is not None else (self.h, self.w, self.c)
        p = self.precision
        layer = Conv2d(name, batch=self.batch, in_h=h, in_w=w, in_c=c, out_c=out_c,
                       kernel_h=kernel, kernel_w=kernel, stride_h=stride, stride_w=stride,
                       pad_h=kernel // 2, pad_w=kernel // 2, groups=groups,
                       activation=activation, act_precision=p, weight_precision=p,
                       out_precision=p)
        self.layers.append(layer)
        if update:
            self.h, self.w, self.c = layer.out_h, layer.out_w, out_c
        return layer

    def add(self, name: str) -> None:
        self.layers.append(Elementwise(name, elements=self.batch * self.h * self.w * self.c,
                                       op="add", inputs=2, precision=self.precision))

    def pool(self, name: str, pool: str, kernel: int | None = None, stride: int = 1,
             padding: int = 0) -> None:
        layer = Pool(name, batch=self.batch, in_h=self.h, in_w=self.w, channels=self.c,
                     kernel=kernel, stride=stride, padding=padding, pool=pool,  # type: ignore[arg-type]
                     precision=self.precision)
        self.layers.append(layer)
        self.h, self.w = layer.out_h, layer.out_w

    def fc(self, name: str, out: int) -> None:
        p = self.precision
        self.layers.append(Matmul(name, m=self.batch, n=out, k=self.h * self.w * self.c,
                                  b_kind="weight", act_precision=p, weight_precision=p,
                                  out_precision=p))
        self.h = self.w = 1
        self.c = out


def resnet50(batch: int = 1, image: int = 224, precision: str = "int8") -> Workload:
    """ResNet-50 v1.5 (torchvision): the stride-2 of a downsampling block is in its 3x3 conv."""
    net = _Net(batch, image, 3, precision)
    net.conv("conv1", 64, 7, stride=2, activation="relu")
    net.pool("maxpool", "max", kernel=3, stride=2, padding=1)
    stages = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
    for s, (width, blocks, stride) in enumerate(stages, start=1):
        for b in range(blocks):
            pre = f"layer{s}.{b}"
            st = stride if b == 0 else 1
            block_in = (net.h, net.w, net.c)
            net.conv(f"{pre}.conv1", width, 1, activation="relu")
            net.conv(f"{pre}.conv2", width, 3, stride=st, activation="relu")
            net.conv(f"{pre}.conv3", width * 4, 1)
            if b == 0:  # projection shortcut: 1x1, same stride as the 3x3
                net.conv(f"{pre}.downsample", width * 4, 1, stride=st, shape=block_in,
                         update=False)
            net.add(f"{pre}.add")  # the block's final ReLU is fused into this add
    net.pool("avgpool", "global_avg")
    net.fc("fc", 1000)
    meta = {"model": "resnet50", "batch": batch, "image": image, "precision": precision,
            "source": "torchvision.models.resnet50 (v1.5), BN folded, ReLU fused"}
    return Workload("resnet50", tuple(net.layers), meta)


# torchvision MobileNetV2 inverted-residual settings: expansion t, channels c, repeats n,
# first stride s (Sandler et al., CVPR 2018, Table 2).
_MBV2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                  (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2(batch: int = 1, image: int = 224, precision: str = "int8") -> Workload:
    """MobileNet-V2 1.0 (torchvision): depthwise 3x3 convs are ``Conv2d(groups=in_c)``."""
    net = _Net(batch, image, 3, precision)
    net.conv("features.0", 32, 3, stride=2, activation="relu6")
    idx = 1
    for t, c, n, s in _MBV2_SETTINGS:
        for i in range(n):
            pre = f"features.{idx}"
            stride = s if i == 0 else 1
            block_in_c = net.c
            hidden = block_in_c * t
            if t != 1:
                net.conv(f"{pre}.expand", hidden, 1, activation="relu6")
            net.conv(f"{pre}.dw", hidden, 3, stride=stride, groups=hidden, activation="relu6")
            net.conv(f"{pre}.project", c, 1)  # linear bottleneck: no activation
            if stride == 1 and block_in_c == c:
                net.add(f"{pre}.add")
            idx += 1
    net.conv(f"features.{idx}", 1280, 1, activation="relu6")
    net.pool("avgpool", "global_avg")
    net.fc("classifier", 1000)
    meta = {"model": "mobilenet_v2", "batch": batch, "image": image, "precision": precision,
            "source": "torchvision.models.mobilenet_v2 (width 1.0), BN folded, ReLU6 fused"}
    return Workload("mobilenet_v2", tuple(net.layers), meta)
