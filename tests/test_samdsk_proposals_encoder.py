"""SAM's image encoder with fused attention against ``ImageEncoderViT`` itself: the same
embeddings in float32 up to rounding, bf16 no further from float32 than the reference's own
bf16, with windowed and global blocks and windows whose size needs padded bias rows."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from segment_anything.modeling import ImageEncoderViT

from samdsk.proposals.engine_encoder import BIAS_ALIGNMENT, _relative_position_bias, encode
from samdsk.proposals.weights import build_sam_vit_tiny


def small_encoder(window: int) -> ImageEncoderViT:
    """Three blocks, the middle one global, on 224-pixel inputs (a 14 x 14 token grid), with
    relative-position tables far from their zero initialisation."""
    torch.manual_seed(window)
    encoder = ImageEncoderViT(
        img_size=224,
        patch_size=16,
        embed_dim=64,
        depth=3,
        num_heads=4,
        mlp_ratio=2.0,
        out_chans=32,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=(1,),
        window_size=window,
    ).eval()
    with torch.no_grad():
        for block in encoder.blocks:
            block.attn.rel_pos_h.normal_(0.0, 0.5)
            block.attn.rel_pos_w.normal_(0.0, 0.5)
    return encoder


@pytest.mark.parametrize("window", [5, 7])  # 25 and 49 keys per window: rows need padding
def test_float32_equals_the_reference_encoder(window: int) -> None:
    encoder = small_encoder(window)
    images = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        reference, ours = encoder(images), encode(encoder, images)
    assert ours.shape == reference.shape == (2, 32, 14, 14)
    assert float(reference.abs().max()) > 1.0
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_tiny_sam_encoder_at_1024_pixels() -> None:
    encoder = build_sam_vit_tiny().image_encoder.eval()
    images = torch.randn(1, 3, 1024, 1024)
    with torch.inference_mode():
        torch.testing.assert_close(encode(encoder, images), encoder(images), atol=1e-5, rtol=1e-5)


def test_bf16_is_no_further_from_float32_than_the_reference_bf16() -> None:
    encoder = small_encoder(5)
    images = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        exact = encoder(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reference, ours = encoder(images).float(), encode(encoder, images).float()
    reference_error = float((reference - exact).abs().max())
    assert float((ours - exact).abs().max()) <= 1.5 * reference_error + 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_encoder_is_no_further_from_float32_than_the_reference_bf16() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    encoder = small_encoder(5).cuda()  # padded bias rows reach the fused CUDA kernels
    images = torch.randn(2, 3, 224, 224, device="cuda")
    with torch.inference_mode():
        exact = encoder(images)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            reference = encoder(images).float()
            # only the fused kernel: a fallback to the slow one fails here
            with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
                ours = encode(encoder, images).float()
    reference_error = float((reference - exact).abs().max())
    assert float((ours - exact).abs().max()) <= 1.5 * reference_error + 1e-3


def test_bias_rows_are_aligned_for_the_fused_kernels() -> None:
    attention = small_encoder(5).blocks[0].attn
    query = torch.randn(3, 4, 25, 16)
    with torch.inference_mode():
        bias = _relative_position_bias(attention, query, (5, 5))
    assert bias.shape == (3, 4, 25, 25)
    assert bias.stride(-1) == 1 and bias.stride(-2) % BIAS_ALIGNMENT == 0
