// BLIP-2 Q-Former: a BERT encoder whose input is [learned queries; instruction
// tokens]. Self-attention runs over both (text padding masked); every
// `cross_attention_freq`-th layer (starting at 0) lets the query positions
// attend to the image embeddings; query and text positions have separate
// feed-forward weights. Output: the query states (B, num_queries, hidden).
// Names follow Hugging Face's BERT ("embeddings.word_embeddings",
// "encoder.layer.0.attention.self.query", ...) plus BLIP-2's "crossattention",
// "intermediate_query", "output_query" and "query_tokens".
#pragma once

#include "dataio/base/torch_compat.h"
#include "model/layer_norm.h"
#include "model/model_config.h"

namespace instructflip {

class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  BertSelfAttentionImpl(int hidden, int heads, int key_width, double dropout);
  // x: (B, Lq, hidden); context: (B, Lk, key_width); mask additive (B, 1, 1, Lk) or undefined
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& mask);
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};

 private:
  int heads_;
  double dropout_;
};
TORCH_MODULE(BertSelfAttention);

// dense -> dropout -> LayerNorm(. + residual): BERT's SelfOutput and Output.
class BertResidualImpl : public torch::nn::Module {
 public:
  BertResidualImpl(int in, int hidden, double eps, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);
  torch::nn::Linear dense{nullptr};
  LayerNorm32 LayerNorm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(BertResidual);

class BertAttentionImpl : public torch::nn::Module {
 public:
  BertAttentionImpl(int hidden, int heads, int key_width, double eps, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& mask);
  BertSelfAttention self{nullptr};
  BertResidual output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  BertIntermediateImpl(int hidden, int intermediate);
  torch::Tensor forward(const torch::Tensor& x);  // GELU(dense(x)), exact erf GELU as BERT
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

class QFormerLayerImpl : public torch::nn::Module {
 public:
  QFormerLayerImpl(const QFormerConfig& config, int encoder_width, bool has_cross_attention);
  // x: (B, Q + T, hidden); image: (B, N, encoder_width). With queries_only the
  // text positions' feed-forward is skipped and (B, Q, hidden) returned.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& self_mask, const torch::Tensor& image,
                        int64_t num_queries, bool queries_only);
  BertAttention attention{nullptr};
  BertAttention crossattention{nullptr};  // null without cross-attention
  BertIntermediate intermediate{nullptr}, intermediate_query{nullptr};
  BertResidual output{nullptr}, output_query{nullptr};
};
TORCH_MODULE(QFormerLayer);

class QFormerEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit QFormerEmbeddingsImpl(const QFormerConfig& config);
  // LayerNorm([queries; word + position embeddings of the text])
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& queries);
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
  LayerNorm32 LayerNorm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(QFormerEmbeddings);

class QFormerEncoderImpl : public torch::nn::Module {
 public:
  QFormerEncoderImpl(const QFormerConfig& config, int encoder_width);
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(QFormerEncoder);

class QFormerImpl : public torch::nn::Module {
 public:
  QFormerImpl(const QFormerConfig& config, int encoder_width);
  // input_ids, text_keep: (B, T) instruction tokens and 1/0 padding mask;
  // image: (B, N, encoder_width). Returns the query states (B, Q, hidden).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& text_keep,
                        const torch::Tensor& image);

  torch::Tensor query_tokens;  // (1, Q, hidden)
  QFormerEmbeddings embeddings{nullptr};
  QFormerEncoder encoder{nullptr};

 private:
  QFormerConfig config_;
};
TORCH_MODULE(QFormer);

}  // namespace instructflip
