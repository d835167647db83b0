#include "launch/model_config_yaml.h"

#include "dataio/check.h"
#include "launch/yaml_reader.h"

namespace instructflip::launch {

ModelConfig ParseModelConfig(const YAML::Node& node, const std::string& file, const std::string& path) {
  ModelConfig c;
  YamlSection root(node, file, path);
  root.Read("name", &c.name);
  std::string variant = VariantName(c.variant);
  root.Read("variant", &variant);
  c.variant = ParseVariant(variant);
  c.loss = DefaultLossWeights(c.variant);

  YamlSection vision = root.Section("vision");
  vision.Read("image_size", &c.vision.image_size);
  vision.Read("patch_size", &c.vision.patch_size);
  vision.Read("width", &c.vision.width);
  vision.Read("layers", &c.vision.layers);
  vision.Read("heads", &c.vision.heads);
  vision.Read("layer_norm_eps", &c.vision.layer_norm_eps);
  vision.RejectUnknownKeys();

  YamlSection qformer = root.Section("qformer");
  qformer.Read("hidden", &c.qformer.hidden);
  qformer.Read("layers", &c.qformer.layers);
  qformer.Read("heads", &c.qformer.heads);
  qformer.Read("intermediate", &c.qformer.intermediate);
  qformer.Read("num_queries", &c.qformer.num_queries);
  qformer.Read("cross_attention_freq", &c.qformer.cross_attention_freq);
  qformer.Read("vocab_size", &c.qformer.vocab_size);
  qformer.Read("max_positions", &c.qformer.max_positions);
  qformer.Read("max_text_length", &c.qformer.max_text_length);
  qformer.Read("layer_norm_eps", &c.qformer.layer_norm_eps);
  qformer.Read("dropout", &c.qformer.dropout);
  qformer.RejectUnknownKeys();

  YamlSection t5 = root.Section("t5");
  t5.Read("vocab_size", &c.t5.vocab_size);
  t5.Read("d_model", &c.t5.d_model);
  t5.Read("d_kv", &c.t5.d_kv);
  t5.Read("d_ff", &c.t5.d_ff);
  t5.Read("encoder_layers", &c.t5.encoder_layers);
  t5.Read("decoder_layers", &c.t5.decoder_layers);
  t5.Read("heads", &c.t5.heads);
  t5.Read("relative_buckets", &c.t5.relative_buckets);
  t5.Read("relative_max_distance", &c.t5.relative_max_distance);
  t5.Read("layer_norm_eps", &c.t5.layer_norm_eps);
  t5.Read("tie_word_embeddings", &c.t5.tie_word_embeddings);
  t5.Read("max_input_length", &c.t5.max_input_length);
  t5.Read("max_output_length", &c.t5.max_output_length);
  t5.Read("feed_forward_activation", &c.t5.feed_forward_activation);
  t5.RejectUnknownKeys();

  YamlSection fusion = root.Section("fusion");
  fusion.Read("heads", &c.fusion.heads);
  fusion.Read("cross_heads", &c.fusion.cross_heads);
  fusion.Read("cross_head_dim", &c.fusion.cross_head_dim);
  fusion.Read("feed_forward", &c.fusion.feed_forward);
  fusion.Read("dropout", &c.fusion.dropout);
  fusion.Read("causal_self_attention", &c.fusion.causal_self_attention);
  fusion.Read("feed_forward_residual", &c.fusion.feed_forward_residual);
  fusion.RejectUnknownKeys();

  YamlSection tokenizers = root.Section("tokenizers");
  tokenizers.Read("bert_vocab", &c.tokenizers.bert_vocab);
  tokenizers.Read("t5_spiece", &c.tokenizers.t5_spiece);
  tokenizers.RejectUnknownKeys();

  YamlSection pretrained = root.Section("pretrained");
  pretrained.Read("clip", &c.pretrained.clip);
  pretrained.Read("bert", &c.pretrained.bert);
  pretrained.Read("t5", &c.pretrained.t5);
  pretrained.RejectUnknownKeys();

  YamlSection loss = root.Section("loss");
  loss.Read("content_lm", &c.loss.content_lm);
  loss.Read("style_lm", &c.loss.style_lm);
  loss.Read("classification", &c.loss.classification);
  loss.Read("cue", &c.loss.cue);
  loss.Read("ssl", &c.loss.ssl);
  loss.RejectUnknownKeys();

  root.Read("cue_noise_weight", &c.cue_noise_weight);
  root.Read("cue_beta", &c.cue_beta);
  root.Read("cue_hidden", &c.cue_hidden);
  root.Read("max_new_tokens", &c.max_new_tokens);
  root.RejectUnknownKeys();
  ValidateModelConfig(c);
  return c;
}

ModelConfig LoadModelConfig(const std::string& path) { return ParseModelConfig(LoadYamlFile(path), path); }

YAML::Node ModelConfigToYaml(const ModelConfig& c) {
  YAML::Node n;
  n["name"] = c.name;
  n["variant"] = VariantName(c.variant);
  n["vision"]["image_size"] = c.vision.image_size;
  n["vision"]["patch_size"] = c.vision.patch_size;
  n["vision"]["width"] = c.vision.width;
  n["vision"]["layers"] = c.vision.layers;
  n["vision"]["heads"] = c.vision.heads;
  n["vision"]["layer_norm_eps"] = c.vision.layer_norm_eps;
  n["qformer"]["hidden"] = c.qformer.hidden;
  n["qformer"]["layers"] = c.qformer.layers;
  n["qformer"]["heads"] = c.qformer.heads;
  n["qformer"]["intermediate"] = c.qformer.intermediate;
  n["qformer"]["num_queries"] = c.qformer.num_queries;
  n["qformer"]["cross_attention_freq"] = c.qformer.cross_attention_freq;
  n["qformer"]["vocab_size"] = c.qformer.vocab_size;
  n["qformer"]["max_positions"] = c.qformer.max_positions;
  n["qformer"]["max_text_length"] = c.qformer.max_text_length;
  n["qformer"]["layer_norm_eps"] = c.qformer.layer_norm_eps;
  n["qformer"]["dropout"] = c.qformer.dropout;
  n["t5"]["vocab_size"] = c.t5.vocab_size;
  n["t5"]["d_model"] = c.t5.d_model;
  n["t5"]["d_kv"] = c.t5.d_kv;
  n["t5"]["d_ff"] = c.t5.d_ff;
  n["t5"]["encoder_layers"] = c.t5.encoder_layers;
  n["t5"]["decoder_layers"] = c.t5.decoder_layers;
  n["t5"]["heads"] = c.t5.heads;
  n["t5"]["relative_buckets"] = c.t5.relative_buckets;
  n["t5"]["relative_max_distance"] = c.t5.relative_max_distance;
  n["t5"]["layer_norm_eps"] = c.t5.layer_norm_eps;
  n["t5"]["tie_word_embeddings"] = c.t5.tie_word_embeddings;
  n["t5"]["max_input_length"] = c.t5.max_input_length;
  n["t5"]["max_output_length"] = c.t5.max_output_length;
  n["t5"]["feed_forward_activation"] = c.t5.feed_forward_activation;
  n["fusion"]["heads"] = c.fusion.heads;
  n["fusion"]["cross_heads"] = c.fusion.cross_heads;
  n["fusion"]["cross_head_dim"] = c.fusion.cross_head_dim;
  n["fusion"]["feed_forward"] = c.fusion.feed_forward;
  n["fusion"]["dropout"] = c.fusion.dropout;
  n["fusion"]["causal_self_attention"] = c.fusion.causal_self_attention;
  n["fusion"]["feed_forward_residual"] = c.fusion.feed_forward_residual;
  n["tokenizers"]["bert_vocab"] = c.tokenizers.bert_vocab;
  n["tokenizers"]["t5_spiece"] = c.tokenizers.t5_spiece;
  n["pretrained"]["clip"] = c.pretrained.clip;
  n["pretrained"]["bert"] = c.pretrained.bert;
  n["pretrained"]["t5"] = c.pretrained.t5;
  n["loss"]["content_lm"] = c.loss.content_lm;
  n["loss"]["style_lm"] = c.loss.style_lm;
  n["loss"]["classification"] = c.loss.classification;
  n["loss"]["cue"] = c.loss.cue;
  n["loss"]["ssl"] = c.loss.ssl;
  n["cue_noise_weight"] = c.cue_noise_weight;
  n["cue_beta"] = c.cue_beta;
  n["cue_hidden"] = c.cue_hidden;
  n["max_new_tokens"] = c.max_new_tokens;
  return n;
}

}  // namespace instructflip::launch
