#include "model/t5.h"

#include <cmath>

#include "dataio/base/check.h"
#include "model/attention.h"

namespace instructflip {

namespace nn = torch::nn;

T5LayerNormImpl::T5LayerNormImpl(int d_model, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({d_model}));
}

torch::Tensor T5LayerNormImpl::forward(const torch::Tensor& x) {
  const torch::Tensor x32 = x.to(torch::kFloat32);
  const torch::Tensor normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * normed.to(weight.scalar_type());
}

torch::Tensor RelativePositionBucket(const torch::Tensor& relative_position, bool bidirectional,
                                     int num_buckets, int max_distance) {
  torch::Tensor bucket = torch::zeros_like(relative_position);
  torch::Tensor n;
  if (bidirectional) {
    num_buckets /= 2;
    bucket = bucket + (relative_position > 0).to(torch::kLong) * num_buckets;
    n = relative_position.abs();
  } else {
    n = -torch::clamp_max(relative_position, 0);
  }
  // Half the buckets are exact offsets, the rest logarithmic up to max_distance.
  const int max_exact = num_buckets / 2;
  const torch::Tensor is_small = n < max_exact;
  torch::Tensor large =
      max_exact + (torch::log(n.to(torch::kFloat32) / max_exact) / std::log(double(max_distance) / max_exact) *
                   (num_buckets - max_exact))
                      .to(torch::kLong);
  large = torch::clamp_max(large, num_buckets - 1);
  return bucket + torch::where(is_small, n, large);
}

LoraAdapterImpl::LoraAdapterImpl(int in_features, int out_features, const LoraConfig& c)
    : scale_(c.alpha / c.rank), dropout_(c.dropout) {
  // PEFT's initialisation: A as nn.Linear's default (kaiming-uniform, a = sqrt(5)), B zero.
  A = register_parameter("A", torch::empty({c.rank, in_features}));
  torch::nn::init::kaiming_uniform_(A, std::sqrt(5.0));
  B = register_parameter("B", torch::zeros({out_features, c.rank}));
}

torch::Tensor LoraAdapterImpl::forward(const torch::Tensor& x) {
  const torch::Tensor in = dropout_ > 0 && is_training() ? torch::dropout(x, dropout_, true) : x;
  return torch::matmul(torch::matmul(in, A.to(in.scalar_type()).t()), B.to(in.scalar_type()).t()) * scale_;
}

torch::Tensor WithLora(nn::Linear& linear, LoraAdapter& adapter, const torch::Tensor& x) {
  const torch::Tensor out = linear(x);
  return adapter.is_empty() ? out : out + adapter(x).to(out.scalar_type());
}

bool IsLoraParameter(const std::string& name) { return name.find("_lora.") != std::string::npos; }

void FreezeT5BaseWeights(T5ModelImpl& t5) {
  for (auto& item : t5.named_parameters()) item.value().set_requires_grad(IsLoraParameter(item.key()));
}

namespace {
// An adapter for `name` when the config targets it, else none.
LoraAdapter MaybeLora(nn::Module& owner, const std::string& name, int in, int out, const LoraConfig& c) {
  if (!c.enabled() || !c.Targets(name)) return LoraAdapter(nullptr);
  return owner.register_module(name + "_lora", LoraAdapter(in, out, c));
}
}  // namespace

T5AttentionImpl::T5AttentionImpl(const T5Config& c, bool has_relative_bias, bool bidirectional)
    : config_(c), bidirectional_(bidirectional) {
  const int inner = c.heads * c.d_kv;
  q = register_module("q", nn::Linear(nn::LinearOptions(c.d_model, inner).bias(false)));
  k = register_module("k", nn::Linear(nn::LinearOptions(c.d_model, inner).bias(false)));
  v = register_module("v", nn::Linear(nn::LinearOptions(c.d_model, inner).bias(false)));
  o = register_module("o", nn::Linear(nn::LinearOptions(inner, c.d_model).bias(false)));
  q_lora = MaybeLora(*this, "q", c.d_model, inner, c.lora);
  k_lora = MaybeLora(*this, "k", c.d_model, inner, c.lora);
  v_lora = MaybeLora(*this, "v", c.d_model, inner, c.lora);
  o_lora = MaybeLora(*this, "o", inner, c.d_model, c.lora);
  if (has_relative_bias)
    relative_attention_bias = register_module("relative_attention_bias", nn::Embedding(c.relative_buckets, c.heads));
}

torch::Tensor T5AttentionImpl::PositionBias(int64_t query_length, int64_t key_length, int64_t query_offset,
                                            const torch::Device& device) {
  IF_CHECK(!relative_attention_bias.is_empty()) << "position bias asked from a layer without one";
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(device);
  const torch::Tensor context = torch::arange(query_offset, query_offset + query_length, long_options).unsqueeze(1);
  const torch::Tensor memory = torch::arange(key_length, long_options).unsqueeze(0);
  const torch::Tensor buckets = RelativePositionBucket(memory - context, bidirectional_, config_.relative_buckets,
                                                       config_.relative_max_distance);
  return relative_attention_bias->forward(buckets).permute({2, 0, 1}).unsqueeze(0);  // (1, H, Lq, Lk)
}

std::pair<torch::Tensor, torch::Tensor> T5AttentionImpl::KeyValues(const torch::Tensor& context) {
  return {SplitHeads(WithLora(k, k_lora, context), config_.heads),
          SplitHeads(WithLora(v, v_lora, context), config_.heads)};
}

torch::Tensor T5AttentionImpl::Attend(const torch::Tensor& x, const torch::Tensor& keys,
                                      const torch::Tensor& values, const torch::Tensor& bias) {
  // T5 folds the 1/sqrt(d) scale into its initialisation: scores are unscaled.
  const torch::Tensor attended =
      MergeHeads(Attention(SplitHeads(WithLora(q, q_lora, x), config_.heads), keys, values, bias, /*scale=*/1.0));
  return WithLora(o, o_lora, attended);
}

T5DenseGatedGeluImpl::T5DenseGatedGeluImpl(const T5Config& c) {
  IF_REQUIRE(c.feed_forward_activation == "gelu" || c.feed_forward_activation == "gelu_new",
             "t5.feed_forward_activation must be 'gelu' or 'gelu_new', got '", c.feed_forward_activation, "'");
  approximate_ = c.feed_forward_activation == "gelu" ? "none" : "tanh";
  wi_0 = register_module("wi_0", nn::Linear(nn::LinearOptions(c.d_model, c.d_ff).bias(false)));
  wi_1 = register_module("wi_1", nn::Linear(nn::LinearOptions(c.d_model, c.d_ff).bias(false)));
  wo = register_module("wo", nn::Linear(nn::LinearOptions(c.d_ff, c.d_model).bias(false)));
  wi_0_lora = MaybeLora(*this, "wi_0", c.d_model, c.d_ff, c.lora);
  wi_1_lora = MaybeLora(*this, "wi_1", c.d_model, c.d_ff, c.lora);
  wo_lora = MaybeLora(*this, "wo", c.d_ff, c.d_model, c.lora);
}

torch::Tensor T5DenseGatedGeluImpl::forward(const torch::Tensor& x) {
  return WithLora(wo, wo_lora, torch::gelu(WithLora(wi_0, wi_0_lora, x), approximate_) * WithLora(wi_1, wi_1_lora, x));
}

T5SubLayerImpl::T5SubLayerImpl(const T5Config& c, Kind kind, bool has_relative_bias, bool bidirectional) {
  layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_eps));
  switch (kind) {
    case Kind::kSelfAttention:
      SelfAttention = register_module("SelfAttention", T5Attention(c, has_relative_bias, bidirectional));
      break;
    case Kind::kCrossAttention:
      EncDecAttention = register_module("EncDecAttention", T5Attention(c, false, true));
      break;
    case Kind::kFeedForward:
      DenseReluDense = register_module("DenseReluDense", T5DenseGatedGelu(c));
      break;
  }
}

T5BlockImpl::T5BlockImpl(const T5Config& c, bool is_decoder, bool has_relative_bias) {
  using Kind = T5SubLayerImpl::Kind;
  layer = register_module("layer", nn::ModuleList());
  layer->push_back(T5SubLayer(c, Kind::kSelfAttention, has_relative_bias, /*bidirectional=*/!is_decoder));
  if (is_decoder) layer->push_back(T5SubLayer(c, Kind::kCrossAttention, false, true));
  layer->push_back(T5SubLayer(c, Kind::kFeedForward, false, true));
}

T5StackImpl::T5StackImpl(const T5Config& c, bool is_decoder) {
  block = register_module("block", nn::ModuleList());
  const int layers = is_decoder ? c.decoder_layers : c.encoder_layers;
  for (int i = 0; i < layers; ++i) block->push_back(T5Block(c, is_decoder, /*has_relative_bias=*/i == 0));
  final_layer_norm = register_module("final_layer_norm", T5LayerNorm(c.d_model, c.layer_norm_eps));
}

T5ModelImpl::T5ModelImpl(const T5Config& c) : config_(c) {
  IF_REQUIRE(c.encoder_layers >= 1 && c.decoder_layers >= 1, "t5 needs at least one encoder and decoder layer");
  shared = register_module("shared", nn::Embedding(c.vocab_size, c.d_model));
  encoder = register_module("encoder", T5Stack(c, false));
  decoder = register_module("decoder", T5Stack(c, true));
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head", nn::Linear(nn::LinearOptions(c.d_model, c.vocab_size).bias(false)));
}

torch::Tensor T5ModelImpl::Encode(const torch::Tensor& inputs_embeds, const torch::Tensor& keep) {
  const int64_t L = inputs_embeds.size(1);
  torch::Tensor x = inputs_embeds;
  const torch::Tensor bias =
      encoder->block_at(0)->sub(0)->SelfAttention->PositionBias(L, L, 0, x.device()).to(torch::kFloat32) +
      PaddingMask(keep, torch::kFloat32);
  for (size_t i = 0; i < encoder->block->size(); ++i) {
    T5Block block = encoder->block_at(i);
    T5SubLayer attention = block->sub(0);
    const torch::Tensor normed = attention->layer_norm(x);
    auto [keys, values] = attention->SelfAttention->KeyValues(normed);
    x = x + attention->SelfAttention->Attend(normed, keys, values, bias);
    T5SubLayer ff = block->sub(1);
    x = x + ff->DenseReluDense(ff->layer_norm(x));
  }
  return encoder->final_layer_norm(x);
}

torch::Tensor T5ModelImpl::LogitsFromHidden(const torch::Tensor& hidden) {
  // Original T5 ties lm_head to the embeddings and rescales; FLAN-T5 does not.
  if (config_.tie_word_embeddings)
    return torch::nn::functional::linear(hidden * std::pow(config_.d_model, -0.5), shared->weight);
  return lm_head(hidden);
}

torch::Tensor T5ModelImpl::Decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& decoder_keep,
                                  const torch::Tensor& encoder_out, const torch::Tensor& encoder_keep) {
  const int64_t T = decoder_input_ids.size(1);
  torch::Tensor x = shared(decoder_input_ids);
  const auto device = x.device();
  const torch::Tensor causal =
      torch::triu(torch::full({T, T}, -1e9, torch::TensorOptions().device(device)), 1).view({1, 1, T, T});
  const torch::Tensor self_bias =
      decoder->block_at(0)->sub(0)->SelfAttention->PositionBias(T, T, 0, device).to(torch::kFloat32) + causal +
      PaddingMask(decoder_keep, torch::kFloat32);
  const torch::Tensor cross_bias = PaddingMask(encoder_keep, torch::kFloat32);
  for (size_t i = 0; i < decoder->block->size(); ++i) {
    T5Block block = decoder->block_at(i);
    T5SubLayer self = block->sub(0), cross = block->sub(1), ff = block->sub(2);
    torch::Tensor normed = self->layer_norm(x);
    auto [keys, values] = self->SelfAttention->KeyValues(normed);
    x = x + self->SelfAttention->Attend(normed, keys, values, self_bias);
    auto [cross_keys, cross_values] = cross->EncDecAttention->KeyValues(encoder_out);
    x = x + cross->EncDecAttention->Attend(cross->layer_norm(x), cross_keys, cross_values, cross_bias);
    x = x + ff->DenseReluDense(ff->layer_norm(x));
  }
  return LogitsFromHidden(decoder->final_layer_norm(x));
}

torch::Tensor T5ModelImpl::LanguageModelLoss(const torch::Tensor& encoder_out, const torch::Tensor& encoder_keep,
                                             const torch::Tensor& labels, double normalizer) {
  const torch::Tensor valid = labels.ne(-100);
  // Decoder inputs: labels shifted right, starting from pad (T5's decoder start).
  torch::Tensor inputs = torch::zeros_like(labels);
  inputs.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1).clamp_min(0));
  const torch::Tensor logits = Decode(inputs, valid.to(torch::kLong), encoder_out, encoder_keep);
  if (valid.sum().item<int64_t>() == 0) return logits.sum() * 0.0;  // nothing to learn, keep the graph
  namespace F = torch::nn::functional;
  auto options = F::CrossEntropyFuncOptions().ignore_index(-100);
  if (normalizer > 0) options = options.reduction(torch::kSum);
  const torch::Tensor loss =
      F::cross_entropy(logits.to(torch::kFloat32).reshape({-1, logits.size(-1)}), labels.reshape({-1}), options);
  return normalizer > 0 ? loss / normalizer : loss;
}

torch::Tensor T5ModelImpl::GenerateGreedy(const torch::Tensor& encoder_out, const torch::Tensor& encoder_keep,
                                          int max_new_tokens, int64_t eos_id) {
  torch::NoGradGuard no_grad;
  const int64_t B = encoder_out.size(0);
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(encoder_out.device());
  const size_t layers = decoder->block->size();
  T5DecoderCache cache;
  cache.cross_bias = PaddingMask(encoder_keep, torch::kFloat32);
  for (size_t i = 0; i < layers; ++i) {
    auto [k, v] = decoder->block_at(i)->sub(1)->EncDecAttention->KeyValues(encoder_out);
    cache.cross_keys.push_back(k);
    cache.cross_values.push_back(v);
  }
  cache.self_keys.resize(layers);
  cache.self_values.resize(layers);

  torch::Tensor token = torch::zeros({B, 1}, long_options);  // decoder start = pad
  torch::Tensor finished = torch::zeros({B}, long_options.dtype(torch::kBool));
  std::vector<torch::Tensor> generated;
  for (int step = 0; step < max_new_tokens; ++step) {
    torch::Tensor x = shared(token);
    // The new position attends to every cached one: no causal mask needed.
    const torch::Tensor self_bias =
        decoder->block_at(0)->sub(0)->SelfAttention->PositionBias(1, step + 1, step, x.device()).to(torch::kFloat32);
    for (size_t i = 0; i < layers; ++i) {
      T5Block block = decoder->block_at(i);
      T5SubLayer self = block->sub(0), cross = block->sub(1), ff = block->sub(2);
      const torch::Tensor normed = self->layer_norm(x);
      auto [k, v] = self->SelfAttention->KeyValues(normed);
      cache.self_keys[i] = step == 0 ? k : torch::cat({cache.self_keys[i], k}, 2);
      cache.self_values[i] = step == 0 ? v : torch::cat({cache.self_values[i], v}, 2);
      x = x + self->SelfAttention->Attend(normed, cache.self_keys[i], cache.self_values[i], self_bias);
      x = x + cross->EncDecAttention->Attend(cross->layer_norm(x), cache.cross_keys[i], cache.cross_values[i],
                                             cache.cross_bias);
      x = x + ff->DenseReluDense(ff->layer_norm(x));
    }
    torch::Tensor next = LogitsFromHidden(decoder->final_layer_norm(x)).argmax(-1);  // (B, 1)
    next = next.masked_fill(finished.unsqueeze(1), 0);
    generated.push_back(next);
    finished = finished | next.squeeze(1).eq(eos_id);
    token = next;
    if (finished.all().item<bool>()) break;
  }
  return torch::cat(generated, 1);
}

}  // namespace instructflip
