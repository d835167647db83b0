#include "launch/model_config_yaml.h"

#include <filesystem>
#include <functional>
#include <map>
#include <type_traits>
#include <variant>

#include "dataio/base/check.h"
#include "launch/yaml_reader.h"

namespace instructflip::launch {

namespace {

using FieldRef = std::variant<int*, uint64_t*, double*, bool*, std::string*>;

// Every YAML field of ModelConfig once, as (section, key, field); section ""
// is the top level. Parsing and writing both walk this list. The variant and
// its loss-weight defaults are handled around it.
void ForEachField(ModelConfig& c, const std::function<void(const char*, const char*, FieldRef)>& f) {
  f("", "name", &c.name);
  f("vision", "image_size", &c.vision.image_size);
  f("vision", "patch_size", &c.vision.patch_size);
  f("vision", "width", &c.vision.width);
  f("vision", "layers", &c.vision.layers);
  f("vision", "heads", &c.vision.heads);
  f("vision", "layer_norm_eps", &c.vision.layer_norm_eps);
  f("qformer", "hidden", &c.qformer.hidden);
  f("qformer", "layers", &c.qformer.layers);
  f("qformer", "heads", &c.qformer.heads);
  f("qformer", "intermediate", &c.qformer.intermediate);
  f("qformer", "num_queries", &c.qformer.num_queries);
  f("qformer", "cross_attention_freq", &c.qformer.cross_attention_freq);
  f("qformer", "vocab_size", &c.qformer.vocab_size);
  f("qformer", "max_positions", &c.qformer.max_positions);
  f("qformer", "max_text_length", &c.qformer.max_text_length);
  f("qformer", "layer_norm_eps", &c.qformer.layer_norm_eps);
  f("qformer", "dropout", &c.qformer.dropout);
  f("t5", "vocab_size", &c.t5.vocab_size);
  f("t5", "d_model", &c.t5.d_model);
  f("t5", "d_kv", &c.t5.d_kv);
  f("t5", "d_ff", &c.t5.d_ff);
  f("t5", "encoder_layers", &c.t5.encoder_layers);
  f("t5", "decoder_layers", &c.t5.decoder_layers);
  f("t5", "heads", &c.t5.heads);
  f("t5", "relative_buckets", &c.t5.relative_buckets);
  f("t5", "relative_max_distance", &c.t5.relative_max_distance);
  f("t5", "layer_norm_eps", &c.t5.layer_norm_eps);
  f("t5", "tie_word_embeddings", &c.t5.tie_word_embeddings);
  f("t5", "max_input_length", &c.t5.max_input_length);
  f("t5", "max_output_length", &c.t5.max_output_length);
  f("t5", "feed_forward_activation", &c.t5.feed_forward_activation);
  f("fusion", "heads", &c.fusion.heads);
  f("fusion", "cross_heads", &c.fusion.cross_heads);
  f("fusion", "cross_head_dim", &c.fusion.cross_head_dim);
  f("fusion", "feed_forward", &c.fusion.feed_forward);
  f("fusion", "dropout", &c.fusion.dropout);
  f("fusion", "causal_self_attention", &c.fusion.causal_self_attention);
  f("fusion", "feed_forward_residual", &c.fusion.feed_forward_residual);
  f("tokenizers", "bert_vocab", &c.tokenizers.bert_vocab);
  f("tokenizers", "t5_spiece", &c.tokenizers.t5_spiece);
  f("pretrained", "clip", &c.pretrained.clip);
  f("pretrained", "bert", &c.pretrained.bert);
  f("pretrained", "t5", &c.pretrained.t5);
  f("t5_warmup", "steps", &c.t5_warmup.steps);
  f("t5_warmup", "lr", &c.t5_warmup.lr);
  f("t5_warmup", "target_loss", &c.t5_warmup.target_loss);
  f("t5_warmup", "seed", &c.t5_warmup.seed);
  f("loss", "content_lm", &c.loss.content_lm);
  f("loss", "style_lm", &c.loss.style_lm);
  f("loss", "classification", &c.loss.classification);
  f("loss", "cue", &c.loss.cue);
  f("loss", "ssl", &c.loss.ssl);
  f("", "cue_noise_weight", &c.cue_noise_weight);
  f("", "cue_beta", &c.cue_beta);
  f("", "cue_hidden", &c.cue_hidden);
  f("", "max_new_tokens", &c.max_new_tokens);
}

}  // namespace

ModelConfig ParseModelConfig(const YAML::Node& node, const std::string& file, const std::string& path) {
  ModelConfig c;
  YamlSection root(node, file, path);
  root.Read("variant", &c.variant, kVariants);
  c.loss = DefaultLossWeights(c.variant);  // the YAML's loss.* may override them
  std::map<std::string, YamlSection> sections;
  ForEachField(c, [&](const char* section, const char* key, FieldRef field) {
    YamlSection* target = &root;
    if (*section != '\0') {
      auto it = sections.find(section);
      if (it == sections.end()) it = sections.emplace(section, root.Section(section)).first;
      target = &it->second;
    }
    std::visit([&](auto* pointer) { target->Read(key, pointer); }, field);
  });
  for (const auto& [name, section] : sections) section.RejectUnknownKeys();
  // LoRA on the frozen T5: written only when enabled, so configurations from
  // before it resume unchanged.
  YamlSection lora = root.Section("lora");
  lora.Read("rank", &c.t5.lora.rank);
  lora.Read("alpha", &c.t5.lora.alpha);
  lora.Read("dropout", &c.t5.lora.dropout);
  lora.Read("targets", &c.t5.lora.targets);
  lora.RejectUnknownKeys();
  root.RejectUnknownKeys();
  try {
    ValidateModelConfig(c);
  } catch (const Error& e) {
    IF_FAIL(file, path.empty() ? "" : " ('" + path + "')", ": ", e.what());
  }
  return c;
}

ModelConfig LoadModelConfig(const std::string& path) {
  YAML::Node node = LoadYamlFile(path);
  ResolveModelFilePaths(node, std::filesystem::path(path).parent_path().string());
  return ParseModelConfig(node, path);
}

void ResolveModelFilePaths(YAML::Node model, const std::string& base_dir) {
  if (!model.IsMap()) return;
  for (const auto& [section, keys] : {std::pair<const char*, std::vector<const char*>>{"tokenizers", {"bert_vocab", "t5_spiece"}},
                                      {"pretrained", {"clip", "bert", "t5"}}}) {
    YAML::Node node = model[section];
    if (!node.IsMap()) continue;
    for (const char* key : keys) {
      YAML::Node value = node[key];
      if (!value.IsScalar()) continue;
      const std::string path = value.Scalar();
      if (path.empty() || path == "instructions" || std::filesystem::path(path).is_absolute()) continue;
      value = (std::filesystem::absolute(base_dir.empty() ? "." : base_dir) / path).lexically_normal().string();
    }
  }
}

YAML::Node ModelConfigToYaml(const ModelConfig& config) {
  ModelConfig c = config;  // ForEachField hands out mutable pointers
  YAML::Node n;
  n["variant"] = kVariants.Name(c.variant);
  ForEachField(c, [&](const char* section, const char* key, FieldRef field) {
    std::visit(
        [&](auto* pointer) {
          YAML::Node slot = *section == '\0' ? n[key] : n[section][key];
          if constexpr (std::is_same_v<decltype(pointer), double*>) slot = YamlNumber(*pointer);
          else slot = *pointer;
        },
        field);
  });
  if (c.t5.lora.enabled()) {
    n["lora"]["rank"] = c.t5.lora.rank;
    n["lora"]["alpha"] = YamlNumber(c.t5.lora.alpha);
    n["lora"]["dropout"] = YamlNumber(c.t5.lora.dropout);
    n["lora"]["targets"] = c.t5.lora.targets;
  }
  return n;
}

}  // namespace instructflip::launch
