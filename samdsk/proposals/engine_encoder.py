"""SAM's image encoder with its attention through ``scaled_dot_product_attention``.

``ImageEncoderViT`` writes every attention matrix out in full and then adds the decomposed
relative-position terms, applies the softmax and multiplies by the values, each a pass over
it: for ViT-H's global blocks that is 16 x 4096 x 4096 scores per image, read and written
about ten times. ``encode`` runs the same modules with the same weights, but builds the
relative-position bias once and hands it to PyTorch's fused attention, which never writes
the scores. The function is the encoder's: in float32 the embeddings equal the reference's
up to rounding (about 1e-6).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

# The fused kernels read the bias row by row; rows that start on a 16-byte boundary let them
# run without a padded copy (windows of 14 x 14 = 196 keys are not a multiple of 8).
BIAS_ALIGNMENT = 8


def encode(encoder: Any, images: torch.Tensor) -> torch.Tensor:
    """B x 3 x S x S preprocessed images -> B x C x h x w embeddings, as
    ``ImageEncoderViT.forward``; for inference (under ``torch.inference_mode``)."""
    x = encoder.patch_embed(images)
    if encoder.pos_embed is not None:
        x = x + encoder.pos_embed
    for block in encoder.blocks:
        x = _block(block, x)
    embeddings: torch.Tensor = encoder.neck(x.permute(0, 3, 1, 2))
    return embeddings


def _block(block: Any, x: torch.Tensor) -> torch.Tensor:
    from segment_anything.modeling.image_encoder import window_partition, window_unpartition

    shortcut = x
    x = block.norm1(x)
    if block.window_size > 0:
        height, width = x.shape[1], x.shape[2]
        x, padded = window_partition(x, block.window_size)
        x = _attention(block.attn, x)
        x = window_unpartition(x, block.window_size, padded, (height, width))
    else:
        x = _attention(block.attn, x)
    x = shortcut + x
    result: torch.Tensor = x + block.mlp(block.norm2(x))
    return result


def _attention(attention: Any, x: torch.Tensor) -> torch.Tensor:
    """B x H x W x C tokens -> B x H x W x C, as the encoder's ``Attention.forward``."""
    batch, height, width, _ = x.shape
    heads = attention.num_heads
    qkv = attention.qkv(x).reshape(batch, height * width, 3, heads, -1).permute(2, 0, 3, 1, 4)
    query, key, value = qkv.unbind(0)  # each B x heads x N x d
    bias = (
        _relative_position_bias(attention, query, (height, width))
        if attention.use_rel_pos
        else None
    )
    if bias is not None:
        bias = bias.to(query.dtype)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias, scale=attention.scale)
    projected: torch.Tensor = attention.proj(out.transpose(1, 2).reshape(batch, height, width, -1))
    return projected


def _relative_position_bias(
    attention: Any, query: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """B x heads x N x N additive scores of ``add_decomposed_rel_pos`` (the unscaled query
    against the relative-position tables), in rows aligned for the fused kernels."""
    from segment_anything.modeling.image_encoder import get_rel_pos

    batch, heads, tokens, depth = query.shape
    height, width = size
    rows = get_rel_pos(height, height, attention.rel_pos_h)
    columns = get_rel_pos(width, width, attention.rel_pos_w)
    grid = query.reshape(batch * heads, height, width, depth)
    by_row = torch.einsum("bhwc,hkc->bhwk", grid, rows)
    by_column = torch.einsum("bhwc,wkc->bhwk", grid, columns)
    padded = -(-tokens // BIAS_ALIGNMENT) * BIAS_ALIGNMENT
    dtype = torch.promote_types(by_row.dtype, by_column.dtype)
    storage = torch.empty(batch * heads, tokens, padded, dtype=dtype, device=query.device)
    bias = storage[..., :tokens]
    torch.add(
        by_row[..., :, None],
        by_column[..., None, :],
        out=bias.view(batch * heads, height, width, height, width),
    )
    return bias.view(batch, heads, tokens, tokens)
