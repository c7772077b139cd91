"""The last step of ``FastMaskDecoder``: SAM's output upscaling and mask hypernetwork product.

``MaskDecoder.output_upscaling`` is two transposed convolutions of kernel 2 and stride 2 with
a channel LayerNorm and activations between them, and the masks are a product of its output
with hypernetwork vectors. Each output pixel of such a convolution sees exactly one input
pixel, so the whole step is a small per-pixel network: matrix products over the pixels,
without the convolutions' layout changes, and only for the masks asked for.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F


class MaskUpscaling:
    """``output_upscaling`` and the hypernetwork product as per-pixel matrix products.

    A transposed convolution with kernel 2 and stride 2 maps each input pixel to its own 2 x 2
    output block, so it is a linear map C -> 4 C1 per pixel; LayerNorm2d normalises each
    output pixel over its channels.
    """

    def __init__(self, upscaling: Any, dtype: torch.dtype) -> None:
        first, norm, self.first_act, second, self.second_act = upscaling
        self.first = _transposed_conv_as_linear(first, dtype)
        self.second = _transposed_conv_as_linear(second, dtype)
        self.norm_weight = norm.weight.detach().to(dtype)
        self.norm_bias = norm.bias.detach().to(dtype)
        self.eps = float(norm.eps)
        self.hidden = int(first.out_channels)
        self.channels = int(second.out_channels)

    def __call__(
        self, keys: torch.Tensor, hyper: torch.Tensor, grid: tuple[int, int]
    ) -> torch.Tensor:
        """k x N x C image tokens (N = h * w, row-major) and k x C' x M hypernetwork vectors,
        both in the weights' dtype -> k x M x 4h x 4w mask logits in that dtype."""
        count = keys.shape[0]
        height, width = grid
        pixels, masks = height * width, hyper.shape[-1]
        x = F.linear(keys, *self.first).view(count, pixels * 4, self.hidden)  # pixel, 2 x 2
        x = F.layer_norm(x, (self.hidden,), self.norm_weight, self.norm_bias, self.eps)
        x = self.first_act(x)
        x = self.second_act(F.linear(x, *self.second)).view(count, pixels * 16, self.channels)
        logits = torch.bmm(x, hyper)  # count x (h w 2 2 2 2) x masks
        # (i, j, a, b, a2, b2) -> row 4i + 2a + a2, column 4j + 2b + b2.
        logits = logits.view(count, height, width, 2, 2, 2, 2, masks)
        logits = logits.permute(0, 7, 1, 3, 5, 2, 4, 6)
        return logits.reshape(count, masks, 4 * height, 4 * width)


def _transposed_conv_as_linear(conv: Any, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(4 C_out x C_in weight, 4 C_out bias) with outputs ordered (a, b, channel) for the
    output pixel (2 i + a, 2 j + b) of input pixel (i, j)."""
    weight = conv.weight.detach()  # C_in x C_out x 2 x 2
    if tuple(conv.kernel_size) != (2, 2) or tuple(conv.stride) != (2, 2):
        raise ValueError("expected transposed convolutions of kernel 2 and stride 2")
    matrix = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1).T
    return matrix.contiguous().to(dtype), conv.bias.detach().repeat(4).to(dtype)
