#include "model/qformer.h"

#include "dataio/base/check.h"
#include "model/attention.h"

namespace instructflip {

namespace nn = torch::nn;

BertSelfAttentionImpl::BertSelfAttentionImpl(int hidden, int heads, int key_width, double dropout)
    : heads_(heads), dropout_(dropout) {
  query = register_module("query", nn::Linear(hidden, hidden));
  key = register_module("key", nn::Linear(key_width, hidden));
  value = register_module("value", nn::Linear(key_width, hidden));
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context,
                                             const torch::Tensor& mask) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(x.size(-1) / heads_));
  return MergeHeads(Attention(SplitHeads(query(x), heads_), SplitHeads(key(context), heads_),
                              SplitHeads(value(context), heads_), mask, scale, is_training() ? dropout_ : 0.0));
}

BertResidualImpl::BertResidualImpl(int in, int hidden, double eps, double dropout) : dropout_(dropout) {
  dense = register_module("dense", nn::Linear(in, hidden));
  LayerNorm = register_module("LayerNorm", LayerNorm32(hidden, eps));
}

torch::Tensor BertResidualImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  return LayerNorm(torch::dropout(dense(x), dropout_, is_training()) + residual);
}

BertAttentionImpl::BertAttentionImpl(int hidden, int heads, int key_width, double eps, double dropout) {
  self = register_module("self", BertSelfAttention(hidden, heads, key_width, dropout));
  output = register_module("output", BertResidual(hidden, hidden, eps, dropout));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context,
                                         const torch::Tensor& mask) {
  return output(self(x, context, mask), x);
}

BertIntermediateImpl::BertIntermediateImpl(int hidden, int intermediate) {
  dense = register_module("dense", nn::Linear(hidden, intermediate));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& x) { return torch::gelu(dense(x)); }

QFormerLayerImpl::QFormerLayerImpl(const QFormerConfig& c, int encoder_width, bool has_cross_attention) {
  attention = register_module("attention", BertAttention(c.hidden, c.heads, c.hidden, c.layer_norm_eps, c.dropout));
  if (has_cross_attention)
    crossattention = register_module(
        "crossattention", BertAttention(c.hidden, c.heads, encoder_width, c.layer_norm_eps, c.dropout));
  intermediate = register_module("intermediate", BertIntermediate(c.hidden, c.intermediate));
  output = register_module("output", BertResidual(c.intermediate, c.hidden, c.layer_norm_eps, c.dropout));
  intermediate_query = register_module("intermediate_query", BertIntermediate(c.hidden, c.intermediate));
  output_query =
      register_module("output_query", BertResidual(c.intermediate, c.hidden, c.layer_norm_eps, c.dropout));
}

torch::Tensor QFormerLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& self_mask,
                                        const torch::Tensor& image, int64_t num_queries, bool queries_only) {
  const torch::Tensor attended = attention(x, x, self_mask);
  torch::Tensor queries = attended.narrow(1, 0, num_queries);
  if (!crossattention.is_empty()) queries = crossattention(queries, image, torch::Tensor());
  queries = output_query(intermediate_query(queries), queries);
  const int64_t text_length = attended.size(1) - num_queries;
  if (text_length == 0 || queries_only) return queries;
  const torch::Tensor text = attended.narrow(1, num_queries, text_length);
  return torch::cat({queries, output(intermediate(text), text)}, 1);
}

QFormerEmbeddingsImpl::QFormerEmbeddingsImpl(const QFormerConfig& c) : dropout_(c.dropout) {
  word_embeddings = register_module("word_embeddings", nn::Embedding(c.vocab_size, c.hidden));
  position_embeddings = register_module("position_embeddings", nn::Embedding(c.max_positions, c.hidden));
  LayerNorm = register_module("LayerNorm", LayerNorm32(c.hidden, c.layer_norm_eps));
  for (auto* weight : {&word_embeddings->weight, &position_embeddings->weight}) nn::init::normal_(*weight, 0.0, 0.02);
}

torch::Tensor QFormerEmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& queries) {
  const int64_t T = input_ids.size(1);
  IF_REQUIRE(T <= position_embeddings->weight.size(0), "Q-Former text of ", T,
             " tokens exceeds max_positions ", position_embeddings->weight.size(0));
  torch::Tensor positions = torch::arange(T, input_ids.options());
  torch::Tensor text = word_embeddings(input_ids) + position_embeddings(positions).unsqueeze(0);
  return torch::dropout(LayerNorm(torch::cat({queries.to(text.scalar_type()), text}, 1)), dropout_, is_training());
}

QFormerEncoderImpl::QFormerEncoderImpl(const QFormerConfig& c, int encoder_width) {
  layer = register_module("layer", nn::ModuleList());
  for (int i = 0; i < c.layers; ++i)
    layer->push_back(QFormerLayer(c, encoder_width, i % c.cross_attention_freq == 0));
}

QFormerImpl::QFormerImpl(const QFormerConfig& c, int encoder_width) : config_(c) {
  IF_REQUIRE(c.hidden % c.heads == 0, "qformer.hidden ", c.hidden, " is not a multiple of qformer.heads ",
             c.heads);
  IF_REQUIRE(c.cross_attention_freq >= 1, "qformer.cross_attention_freq must be >= 1, got ",
             c.cross_attention_freq);
  query_tokens = register_parameter("query_tokens", torch::randn({1, c.num_queries, c.hidden}) * 0.02);
  embeddings = register_module("embeddings", QFormerEmbeddings(c));
  encoder = register_module("encoder", QFormerEncoder(c, encoder_width));
  // BERT's _init_weights, as Hugging Face initialises every module a checkpoint
  // does not hold (the reference's cross-attention and *_query feed-forward
  // layers; the whole Q-Former without pretrained BERT weights): Linear weights
  // normal(0, 0.02) and zero bias (LibTorch's default is kaiming-uniform with a
  // uniform bias). Embeddings are normal(0, 0.02) above, LayerNorms 1 and 0.
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<nn::Linear>()) {
      nn::init::normal_(linear->weight, 0.0, 0.02);
      nn::init::zeros_(linear->bias);
    }
  }
}

torch::Tensor QFormerImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& text_keep,
                                   const torch::Tensor& image) {
  const int64_t B = input_ids.size(0), Q = config_.num_queries;
  torch::Tensor x = embeddings(input_ids, query_tokens.expand({B, -1, -1}));
  // Queries always attend; text positions follow the padding mask.
  const torch::Tensor keep = torch::cat({torch::ones({B, Q}, text_keep.options()), text_keep}, 1);
  const torch::Tensor mask = PaddingMask(keep, x.scalar_type());
  const size_t last = encoder->layer->size() - 1;
  for (size_t i = 0; i <= last; ++i)  // the last layer's text positions feed nothing: skip them
    x = encoder->layer[i]->as<QFormerLayer>()->forward(x, mask, image, Q, /*queries_only=*/i == last);
  return x;
}

}  // namespace instructflip
