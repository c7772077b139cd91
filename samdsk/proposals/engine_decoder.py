"""SAM's mask decoder, restructured for many point prompts on one image embedding.

``MaskDecoder`` copies the 64 x 64 image embedding once per prompt and runs every step on
those copies in float32: over a 32 x 32 point grid that is about 3.7 TFLOP and, counting
every tensor read and written, about 380 GB of memory traffic per image, more than the ViT-B
image encoder costs. ``FastMaskDecoder`` computes the same function with less work:

- what does not depend on the prompt is computed once per image: the first layer's image
  keys, values and image-side queries (its image tokens are the same for every prompt), and
  the positional terms of later projections (``linear(x + pe) = linear(x) + pe @ W.T + b``),
  which enter each prompt's attention scores as a small additive bias instead of a pass over
  its keys and queries (and a value bias is added after the softmax, whose weights sum to 1);
- the three projections that read the same image tokens are one matrix product;
- each image-to-token attention is one product of the image-side queries with a
  block-diagonal matrix of every head's token keys, and one update added in place, with the
  output projection folded into the token values;
- the two transposed convolutions (kernel 2, stride 2, so each output pixel sees one input
  pixel) and the mask hypernetwork product are per-pixel matrix products, and only the three
  multimask outputs are made (``engine_upscaling.MaskUpscaling``);
- image-side tensors may be bf16 (``dtype``) while the prompt tokens, the mask hypernetworks
  and the IoU head stay float32, so predicted IoUs come from float32 arithmetic and do not
  tie the way bf16 values would;
- the mask logits are made only for the prompts asked for (the engine asks only for prompts
  with a mask above the predicted-IoU threshold, which needs no mask).

In float32 its outputs equal the reference decoder's up to rounding (about 1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from samdsk.proposals.engine_upscaling import MaskUpscaling

MULTIMASK = slice(1, None)  # the reference's multimask output: mask tokens 1, 2 and 3


@dataclass(frozen=True)
class ImageTerms:
    """The prompt-independent part of the decoder for one image embedding.

    residual: N x C image tokens (embedding plus the no-mask embedding, N = h * w, row-major)
    plus the first image-to-token attention's output bias: what that attention adds to;
    first_keys, first_values: 1 x heads x N x d of the first token-to-image attention;
    first_queries: heads x N x d of the first image-to-token attention, already multiplied by
    the attention's 1 / sqrt(d) (a pass over every prompt's scores saved); later: the
    positional terms of each later layer, then of the final attention; grid: (h, w). All in
    the decoder's dtype but the value biases.
    """

    residual: torch.Tensor
    first_keys: torch.Tensor
    first_values: torch.Tensor
    first_queries: torch.Tensor
    later: list[PositionalTerms]
    grid: tuple[int, int]


@dataclass(frozen=True)
class PositionalTerms:
    """The prompt-independent part of a later layer's image-side projections.

    key_pe: heads x N x d, ``pe @ Wk.T + bk`` times 1 / sqrt(d): its product with the token
    queries is a bias of the token-to-image scores. value_bias: D float32, added to that
    attention's output. query_pe: N x D, ``pe @ Wq.T + bq``, whose product with the token keys
    is a bias of the image-to-token scores (None for the final attention, which has none).
    """

    key_pe: torch.Tensor
    value_bias: torch.Tensor
    query_pe: torch.Tensor | None


@dataclass(frozen=True)
class Decoded:
    """B prompts through the transformer: image tokens (B x N x C, the decoder's dtype), the
    multimask predicted IoUs (B x 3 float32) and mask hypernetwork vectors (B x C' x 3)."""

    keys: torch.Tensor
    iou: torch.Tensor
    hyper: torch.Tensor


class FastMaskDecoder:
    """The mask decoder of a ``segment_anything`` ``Sam`` for point prompts, multimask output.

    dtype: of the image-side tensors (torch.bfloat16 on a GPU, torch.float32 for results
    equal to the reference's up to rounding). The model's own weights are read, never changed.
    """

    def __init__(self, model: Any, dtype: torch.dtype) -> None:
        self.model = model
        self.dtype = dtype
        decoder = model.mask_decoder
        self.transformer = decoder.transformer
        self.layers = list(self.transformer.layers)
        if not self.layers or not self.layers[0].skip_first_layer_pe:
            raise ValueError("expected SAM's two-way transformer (first layer without PE)")
        attention = self.layers[0].cross_attn_token_to_image
        self.heads: int = attention.num_heads
        self.inner: int = attention.internal_dim
        self._scale = float(self.inner // self.heads) ** -0.5
        with torch.no_grad():
            # Float32 (weight, bias) of each later layer's fused image-side projections, for
            # the per-image positional terms; the weights alone in dtype, for every prompt.
            self._fused32 = [self._fused_weights(layer) for layer in self.layers[1:]]
            final = self.transformer.final_attn_token_to_image
            self._final32 = _stack([final.k_proj, final.v_proj])
            self._fused = [weight.to(dtype) for weight, _ in self._fused32]
            self._final = self._final32[0].to(dtype)
            self._upscale = MaskUpscaling(decoder.output_upscaling, dtype)

    def image_terms(self, embedding: torch.Tensor) -> ImageTerms:
        """Terms of a 1 x C x h x w float32 image embedding, for every prompt batch on it."""
        prompts = self.model.prompt_encoder
        _, channels, height, width = embedding.shape
        if (height, width) != tuple(prompts.image_embedding_size):
            # The positional encoding is of that grid; another one would pair the wrong rows.
            raise ValueError(
                f"image embedding of {height} x {width}; the model's grid is "
                f"{prompts.image_embedding_size}"
            )
        with torch.no_grad():
            no_mask = prompts.no_mask_embed.weight.reshape(1, channels, 1, 1)
            src = (embedding.float() + no_mask)[0].flatten(1).T.contiguous()  # N x C
            pe = prompts.get_dense_pe()[0].flatten(1).T.contiguous()
            first = self.layers[0]
            keys = first.cross_attn_token_to_image.k_proj(src + pe)
            values = first.cross_attn_token_to_image.v_proj(src)
            queries = first.cross_attn_image_to_token.q_proj(src + pe)
            later = [self._positional(pe, *weights) for weights in (*self._fused32, self._final32)]
            residual = src + first.cross_attn_image_to_token.out_proj.bias
        return ImageTerms(
            residual=residual.to(self.dtype),
            first_keys=self._heads(keys[None]).to(self.dtype),
            first_values=self._heads(values[None]).to(self.dtype),
            first_queries=(self._heads(queries[None])[0] * self._scale).to(self.dtype),
            later=later,
            grid=(height, width),
        )

    def transform(self, terms: ImageTerms, sparse: torch.Tensor) -> Decoded:
        """B x T x C float32 sparse prompt embeddings -> the transformer's outputs."""
        decoder = self.model.mask_decoder
        batch = sparse.shape[0]
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight])
        prompt = torch.cat([output_tokens[None].expand(batch, -1, -1), sparse], dim=1)
        queries, keys = self._first_layer(terms, prompt)
        for index, layer in enumerate(self.layers[1:], start=1):
            queries, keys = self._later_layer(terms, layer, index, queries, keys, prompt)
        queries = self._final_attention(terms, queries, keys, prompt)
        masks = queries[:, 1 : 1 + decoder.num_mask_tokens]
        hyper = torch.stack(
            [mlp(masks[:, i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=2
        )
        iou = decoder.iou_prediction_head(queries[:, 0])
        return Decoded(keys=keys, iou=iou[:, MULTIMASK].float(), hyper=hyper[..., MULTIMASK])

    def mask_logits(
        self, terms: ImageTerms, keys: torch.Tensor, hyper: torch.Tensor
    ) -> torch.Tensor:
        """k x N x C image tokens and k x C' x 3 hypernetwork vectors -> k x 3 x 4h x 4w
        float32 low-resolution mask logits (the reference decoder's multimask output)."""
        return self._upscale(keys, hyper.to(self.dtype), terms.grid).float()

    def __call__(
        self, terms: ImageTerms, sparse: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B x 3 x 4h x 4w float32 logits, B x 3 float32 predicted IoU), as ``MaskDecoder``
        with multimask output."""
        decoded = self.transform(terms, sparse)
        return self.mask_logits(terms, decoded.keys, decoded.hyper), decoded.iou

    def _first_layer(
        self, terms: ImageTerms, prompt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first block: every prompt attends to the same image tokens."""
        layer = self.layers[0]
        queries = layer.norm1(layer.self_attn(q=prompt, k=prompt, v=prompt))
        attention = layer.cross_attn_token_to_image
        asked = self._heads(attention.q_proj(queries + prompt))  # B x heads x T x d
        batch, heads, tokens, depth = asked.shape
        # One long query sequence against the shared keys: no per-prompt copy of them.
        folded = _heads_major(asked)[None].to(self.dtype)
        seen = F.scaled_dot_product_attention(folded, terms.first_keys, terms.first_values)
        seen = seen.reshape(heads, batch, tokens, depth).permute(1, 2, 0, 3).flatten(2)
        queries = layer.norm2(queries + attention.out_proj(seen.float()))
        queries = layer.norm3(queries + layer.mlp(queries))
        keys = self._image_to_token_shared(terms, layer, queries, prompt)
        return queries, keys

    def _image_to_token_shared(
        self, terms: ImageTerms, layer: Any, queries: torch.Tensor, prompt: torch.Tensor
    ) -> torch.Tensor:
        """The first image-to-token attention, whose image-side queries every prompt shares.

        Softmax weights A (over each prompt's T tokens) and per-head value rows folded into
        the output projection, U_h = V_h @ W_out,h.T, give the projected output directly as
        A @ U: no B x N x D attention output and no separate projection pass over it.
        """
        attention = layer.cross_attn_image_to_token
        token_keys = self._heads(attention.k_proj(queries + prompt))  # B x heads x T x d
        token_values = self._heads(attention.v_proj(queries))
        batch, heads, tokens, depth = token_keys.shape
        columns = token_keys.permute(1, 3, 0, 2).reshape(heads, depth, batch * tokens)
        logits = torch.matmul(terms.first_queries, columns.to(self.dtype))
        # In bf16 the softmax still sums in float32 internally; its output is a weight.
        weights = logits.view(heads, -1, batch, tokens).softmax(dim=-1)
        weights = weights.permute(2, 1, 0, 3).reshape(batch, -1, heads * tokens)
        folded = self._values_through_output(attention.out_proj, token_values, with_bias=False)
        projected = torch.bmm(weights, folded)
        projected += terms.residual
        return _layer_norm(projected, layer.norm4)

    def _later_layer(
        self,
        terms: ImageTerms,
        layer: Any,
        index: int,
        queries: torch.Tensor,
        keys: torch.Tensor,
        prompt: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        asked = queries + prompt
        queries = layer.norm1(queries + layer.self_attn(q=asked, k=asked, v=queries))
        # Token-to-image keys and values and image-to-token queries in one product.
        projected = F.linear(keys, self._fused[index - 1])
        positional = terms.later[index - 1]
        image_queries = projected[..., 2 * self.inner :]  # B x N x D, rows 3D apart
        queries = self._token_to_image(
            layer.cross_attn_token_to_image, positional, projected, queries, prompt
        )
        queries = layer.norm2(queries)
        queries = layer.norm3(queries + layer.mlp(queries))
        if positional.query_pe is None:  # only the final attention has none
            raise ValueError("a later layer's positional terms lack image-side queries")
        keys = self._image_to_token(
            layer, positional.query_pe, image_queries, queries, prompt, keys
        )
        return queries, keys

    def _image_to_token(
        self,
        layer: Any,
        query_pe: torch.Tensor,
        image_queries: torch.Tensor,
        queries: torch.Tensor,
        prompt: torch.Tensor,
        keys: torch.Tensor,
    ) -> torch.Tensor:
        """The new image tokens of a later layer: ``keys`` (overwritten) plus their attention to
        the prompt tokens, normalised.

        The scores of all heads come from one product of the image-side queries (B x N x D, a
        view of the fused projection) with a block-diagonal matrix of each head's token keys,
        and land as B x N x (heads x T) weights; with the output projection folded into the
        token values (U_h = V_h @ W_out,h.T plus the bias shared out over the heads, since each
        head's weights sum to 1) the update is one product added onto ``keys`` in place.
        """
        attention = layer.cross_attn_image_to_token
        token_keys = self._heads(attention.k_proj(queries + prompt))  # B x heads x T x d
        token_values = self._heads(attention.v_proj(queries))
        batch, heads, tokens, depth = token_keys.shape
        eye = torch.eye(heads, dtype=token_keys.dtype, device=token_keys.device)
        blocks = (token_keys * self._scale).transpose(2, 3)[:, :, :, None, :] * eye[
            :, None, :, None
        ]
        blocks = blocks.reshape(batch, heads * depth, heads * tokens).to(self.dtype)
        positional = torch.matmul(query_pe, blocks)  # B x N x heads T, in whatever layout
        logits = torch.baddbmm(positional, image_queries, blocks)  # a new, contiguous tensor
        weights = logits.view(batch, -1, heads, tokens).softmax(dim=-1).flatten(2)
        folded = self._values_through_output(attention.out_proj, token_values, with_bias=True)
        keys.baddbmm_(weights, folded)
        return _layer_norm(keys, layer.norm4)

    def _final_attention(
        self, terms: ImageTerms, queries: torch.Tensor, keys: torch.Tensor, prompt: torch.Tensor
    ) -> torch.Tensor:
        projected = F.linear(keys, self._final)
        attention = self.transformer.final_attn_token_to_image
        queries = self._token_to_image(attention, terms.later[-1], projected, queries, prompt)
        normed: torch.Tensor = self.transformer.norm_final_attn(queries)
        return normed

    def _token_to_image(
        self,
        attention: Any,
        positional: PositionalTerms,
        projected: torch.Tensor,
        queries: torch.Tensor,
        prompt: torch.Tensor,
    ) -> torch.Tensor:
        """``queries`` plus their attention to the image: keys and values are the first 2D
        columns of ``projected`` (B x N x >= 2D, without positional terms or biases)."""
        inner = self.inner
        image_keys = self._heads(projected[..., :inner])
        image_values = self._heads(projected[..., inner : 2 * inner])
        asked = self._heads(attention.q_proj(queries + prompt))  # B x heads x T x d
        batch, heads, tokens, _ = asked.shape
        folded = _heads_major(asked).to(self.dtype)
        bias = torch.bmm(folded, positional.key_pe.transpose(1, 2))  # heads x B T x N
        bias = bias.view(heads, batch, tokens, -1).transpose(0, 1)
        seen = F.scaled_dot_product_attention(
            asked.to(self.dtype), image_keys, image_values, attn_mask=bias
        )
        seen = seen.transpose(1, 2).flatten(2).float() + positional.value_bias
        update: torch.Tensor = attention.out_proj(seen)
        return queries + update

    def _positional(
        self, pe: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
    ) -> PositionalTerms:
        """The positional terms of a fused float32 projection: keys, values, then (in a
        later layer) image-to-token queries, D rows each."""
        inner = self.inner

        def term(rows: slice) -> torch.Tensor:
            return pe @ weight[rows].T + bias[rows]

        key_pe = self._heads(term(slice(0, inner))[None])[0] * self._scale
        has_queries = weight.shape[0] == 3 * inner
        return PositionalTerms(
            key_pe=key_pe.to(self.dtype),
            value_bias=bias[inner : 2 * inner].float(),
            query_pe=term(slice(2 * inner, 3 * inner)).to(self.dtype) if has_queries else None,
        )

    def _values_through_output(
        self, out_proj: Any, token_values: torch.Tensor, with_bias: bool
    ) -> torch.Tensor:
        """B x heads x T x d token values -> B x (heads T) x C rows U[h, t] = V[h, t] @
        W_out,h.T (plus b_out / heads: each head's softmax weights sum to 1, so the heads
        together add b_out once), in the decoder's dtype."""
        batch, heads, tokens, depth = token_values.shape
        per_head = out_proj.weight.view(-1, heads, depth).permute(1, 2, 0)  # heads x d x C
        folded = torch.bmm(_heads_major(token_values), per_head)
        folded = folded.view(heads, batch, tokens, -1).transpose(0, 1)
        if with_bias:
            folded = folded + out_proj.bias / heads
        return folded.reshape(batch, heads * tokens, -1).to(self.dtype)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """B x L x D -> B x heads x L x d, as ``Attention._separate_heads`` (a view)."""
        batch, length, width = x.shape
        return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

    @staticmethod
    def _fused_weights(layer: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The float32 (3D x C weight, 3D bias) of a later layer's three image-side
        projections: token-to-image k and v, image-to-token q."""
        return _stack(
            [
                layer.cross_attn_token_to_image.k_proj,
                layer.cross_attn_token_to_image.v_proj,
                layer.cross_attn_image_to_token.q_proj,
            ]
        )


def _heads_major(x: torch.Tensor) -> torch.Tensor:
    """B x heads x T x d -> heads x (B T) x d: every prompt's rows as one sequence per head."""
    batch, heads, tokens, depth = x.shape
    return x.transpose(0, 1).reshape(heads, batch * tokens, depth)


def _stack(linears: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    weight = torch.cat([linear.weight.detach() for linear in linears])
    bias = torch.cat([linear.bias.detach() for linear in linears])
    return weight.float(), bias.float()


def _layer_norm(x: torch.Tensor, norm: Any) -> torch.Tensor:
    weight, bias = norm.weight.to(x.dtype), norm.bias.to(x.dtype)
    return F.layer_norm(x, norm.normalized_shape, weight, bias, norm.eps)
