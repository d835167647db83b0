#include "model/flops.h"

namespace instructflip {
namespace {

double QFormerForward(const QFormerConfig& c, int64_t text, int64_t image_tokens, int64_t image_width) {
  const double H = c.hidden, I = c.intermediate, Q = c.num_queries, T = static_cast<double>(text);
  const double S = Q + T, N = static_cast<double>(image_tokens), E = static_cast<double>(image_width);
  double flops = 0;
  for (int layer = 0; layer < c.layers; ++layer) {
    flops += 8 * S * H * H + 4 * S * S * H;
    if (layer % c.cross_attention_freq == 0) flops += 4 * Q * H * H + 4 * N * H * E + 4 * Q * N * H;
    flops += 4 * Q * H * I;
    if (layer + 1 < c.layers) flops += 4 * T * H * I;
  }
  return flops;
}

double T5Forward(const T5Config& c, int64_t encoder_tokens, int64_t decoder_tokens) {
  const double d = c.d_model, a = static_cast<double>(c.heads) * c.d_kv, f = c.d_ff, V = c.vocab_size;
  const double L = static_cast<double>(encoder_tokens), D = static_cast<double>(decoder_tokens);
  const double encoder = c.encoder_layers * (8 * L * d * a + 4 * L * L * a + 6 * L * d * f);
  const double decoder = c.decoder_layers * (8 * D * d * a + 4 * D * D * a + 4 * D * d * a + 4 * L * d * a +
                                             4 * D * L * a + 6 * D * d * f) +
                         2 * D * d * V;
  return encoder + decoder;
}

}  // namespace

FlopCount CountFlopsPerImage(const ModelConfig& c, const StepShape& s) {
  FlopCount out;
  const double W = c.vision.width;
  const int64_t grid = c.vision.image_size / c.vision.patch_size;
  const double P = static_cast<double>(grid * grid), L = P + 1;
  // Vision tower: patch embedding + layers.
  out.trainable_forward += 2 * P * (3.0 * c.vision.patch_size * c.vision.patch_size) * W;
  out.trainable_forward += c.vision.layers * (24 * L * W * W + 4 * L * L * W);
  if (c.variant == Variant::kMultiClass || c.variant == Variant::kVisionOnly) return out;

  const int64_t Q = c.qformer.num_queries;
  out.trainable_forward += QFormerForward(c.qformer, s.content_text, static_cast<int64_t>(L), c.vision.width);
  int64_t fused_queries = Q;
  if (c.has_style_branch()) {
    out.trainable_forward += QFormerForward(c.qformer, s.style_text, 2 * c.vision.layers, c.vision.width);
    fused_queries += Q;
  }
  if (c.variant != Variant::kNoLlm) {
    const double projection = 2.0 * Q * c.qformer.hidden * c.t5.d_model;
    out.trainable_forward += projection;
    out.frozen_forward += T5Forward(c.t5, Q + s.content_t5_input, s.content_answer);
    if (c.has_style_branch()) {
      out.trainable_forward += projection;
      out.frozen_forward += T5Forward(c.t5, Q + s.style_t5_input, s.style_answer);
    }
  }
  const double M = static_cast<double>(fused_queries);
  const double cross = static_cast<double>(c.fusion.cross_heads) * c.fusion.cross_head_dim;
  out.trainable_forward += 8 * L * W * W + 4 * L * L * W;
  out.trainable_forward += 4 * L * W * cross + 4 * M * W * cross + 4 * L * (M + 1) * cross;
  out.trainable_forward += 4 * L * W * c.fusion.feed_forward;
  if (c.variant == Variant::kFull || c.variant == Variant::kNoLlm)
    out.trainable_forward += 2 * P * 9 * W * c.cue_hidden + 2 * P * 9 * c.cue_hidden * 3;
  return out;
}

}  // namespace instructflip
