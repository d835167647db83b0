#include "model/weights.h"

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "dataio/base/check.h"

namespace instructflip {
namespace {

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string StripPrefix(const std::string& s, const std::string& prefix) {
  return StartsWith(s, prefix) ? s.substr(prefix.size()) : s;
}

// Old BERT checkpoints name LayerNorm parameters gamma/beta.
std::string ModernLayerNormName(std::string name) {
  for (const auto& [old_suffix, new_suffix] : {std::pair<std::string, std::string>{".gamma", ".weight"}, {".beta", ".bias"}})
    if (name.size() > old_suffix.size() && name.compare(name.size() - old_suffix.size(), old_suffix.size(), old_suffix) == 0)
      return name.substr(0, name.size() - old_suffix.size()) + new_suffix;
  return name;
}

// Where one checkpoint tensor goes: a list of (model name, tensor) targets, or
// "ignored" (known, deliberately unused), or nothing (unexpected).
struct Mapping {
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  bool ignored = false;
};

// Copies mapped tensors into the model's parameters under `component_prefix`.
LoadReport Apply(torch::nn::Module& model, const std::string& path, const std::string& component_prefix,
                 const std::function<std::optional<Mapping>(const std::string&, const SafetensorsFile&)>& map) {
  const std::unique_ptr<SafetensorsFile> opened = SafetensorsFile::Open(path);
  const SafetensorsFile& file = *opened;
  LoadReport report;
  report.source = path;
  auto params = model.named_parameters(/*recurse=*/true);
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  for (const SafetensorsTensorInfo& info : file.tensors()) {
    const std::optional<Mapping> mapping = map(info.name, file);
    if (!mapping) {
      report.unexpected.push_back(info.name);
      continue;
    }
    if (mapping->ignored) {
      report.ignored.push_back(info.name);
      continue;
    }
    for (const auto& [target, tensor] : mapping->targets) {
      torch::Tensor* param = params.find(target);
      IF_REQUIRE(param != nullptr, path, ": tensor '", info.name, "' maps to '", target,
                 "', which this model configuration does not have");
      torch::Tensor source = tensor;
      const bool vocabulary_prefix = target.find("word_embeddings") != std::string::npos &&
                                     source.dim() == 2 && source.size(1) == param->size(1) &&
                                     source.size(0) < param->size(0);
      if (vocabulary_prefix) {
        // BLIP-2 appends [DEC] to BERT's vocabulary: copy the known rows, keep the new one.
        param->narrow(0, 0, source.size(0)).copy_(source.to(param->scalar_type()));
      } else {
        IF_REQUIRE(source.sizes() == param->sizes(), path, ": tensor '", info.name, "' has shape ",
                   source.sizes(), " but model parameter '", target, "' has shape ", param->sizes());
        param->copy_(source.to(param->scalar_type()));
      }
      filled.insert(target);
      report.loaded.push_back(target);
    }
  }
  for (const auto& item : params)
    if (StartsWith(item.key(), component_prefix) && !filled.count(item.key())) report.missing.push_back(item.key());
  return report;
}

std::optional<Mapping> One(const std::string& target, const torch::Tensor& tensor) {
  return Mapping{{{target, tensor}}, false};
}
std::optional<Mapping> Ignored() { return Mapping{{}, true}; }

// OpenAI CLIP "visual.*" names -> Hugging Face layout under visual_encoder.
std::optional<Mapping> MapOpenAiVisual(const std::string& key, const SafetensorsFile& file) {
  const std::string p = "visual_encoder.";
  const std::string k = key.substr(std::string("visual.").size());
  if (k == "conv1.weight") return One(p + "embeddings.patch_embedding.weight", file.Get(key));
  if (k == "class_embedding") return One(p + "embeddings.class_embedding", file.Get(key));
  if (k == "positional_embedding") return One(p + "embeddings.position_embedding.weight", file.Get(key));
  if (k == "proj") return Ignored();  // the 768->512 projection InstructFLIP never uses
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"ln_pre.", "pre_layrnorm."}, {"ln_post.", "post_layernorm."}})
    if (StartsWith(k, from)) return One(p + to + k.substr(from.size()), file.Get(key));
  const std::string blocks = "transformer.resblocks.";
  if (!StartsWith(k, blocks)) return std::nullopt;
  const std::string rest = k.substr(blocks.size());
  const size_t dot = rest.find('.');
  const std::string layer = p + "encoder.layers." + rest.substr(0, dot) + ".";
  const std::string name = rest.substr(dot + 1);
  if (name == "attn.in_proj_weight" || name == "attn.in_proj_bias") {
    // One fused (3W, W) projection in OpenAI's nn.MultiheadAttention: q, k, v rows.
    const std::vector<torch::Tensor> qkv = file.Get(key).chunk(3, 0);
    const std::string suffix = name == "attn.in_proj_weight" ? "weight" : "bias";
    return Mapping{{{layer + "self_attn.q_proj." + suffix, qkv[0]},
                    {layer + "self_attn.k_proj." + suffix, qkv[1]},
                    {layer + "self_attn.v_proj." + suffix, qkv[2]}},
                   false};
  }
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"attn.out_proj.", "self_attn.out_proj."},
                                 {"ln_1.", "layer_norm1."},
                                 {"ln_2.", "layer_norm2."},
                                 {"mlp.c_fc.", "mlp.fc1."},
                                 {"mlp.c_proj.", "mlp.fc2."}})
    if (StartsWith(name, from)) return One(layer + to + name.substr(from.size()), file.Get(key));
  return std::nullopt;
}

std::optional<Mapping> MapClip(const std::string& key, const SafetensorsFile& file) {
  if (StartsWith(key, "visual.")) return MapOpenAiVisual(key, file);
  for (const char* other : {"text_model.", "text_projection", "visual_projection", "logit_scale", "positional_embedding",
                            "token_embedding", "transformer.", "ln_final", "vision_model.embeddings.position_ids"})
    if (StartsWith(key, other)) return Ignored();  // the text tower and CLIP's projections
  const std::string k = StripPrefix(key, "vision_model.");
  for (const char* part : {"embeddings.", "encoder.", "pre_layrnorm.", "post_layernorm."})
    if (StartsWith(k, part)) return One("visual_encoder." + k, file.Get(key));
  return std::nullopt;
}

}  // namespace

std::string LoadReport::Summary() const {
  std::ostringstream out;
  out << source << ": " << loaded.size() << " tensors loaded, " << missing.size() << " left as initialised, "
      << ignored.size() << " known and unused, " << unexpected.size() << " unexpected";
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    out << "\n  " << what << ":";
    for (size_t i = 0; i < names.size() && i < 12; ++i) out << " " << names[i];
    if (names.size() > 12) out << " ... (" << names.size() - 12 << " more)";
  };
  list("left as initialised", missing);
  list("unexpected", unexpected);
  return out.str();
}

LoadReport LoadClipVision(InstructFlipImpl& model, const std::string& path) {
  LoadReport report = Apply(model, path, "visual_encoder.", MapClip);
  IF_REQUIRE(!report.loaded.empty(), path, ": no tensor of the CLIP checkpoint matches a vision tower (expected names like "
             "'vision_model.encoder.layers.0.self_attn.q_proj.weight' or 'visual.conv1.weight')");
  return report;
}

LoadReport LoadBertIntoQFormers(InstructFlipImpl& model, const std::string& path) {
  std::vector<std::string> targets;
  if (!model.content_Qformer.is_empty()) targets.push_back("content_Qformer.");
  if (!model.style_Qformer.is_empty()) targets.push_back("style_Qformer.");
  IF_REQUIRE(!targets.empty(), "model variant '", VariantName(model.config().variant), "' has no Q-Former to load BERT into");
  const int layers = model.config().qformer.layers;
  auto map = [&](const std::string& key, const SafetensorsFile& f) -> std::optional<Mapping> {
    const std::string k = ModernLayerNormName(StripPrefix(key, "bert."));
    if (StartsWith(k, "pooler.") || StartsWith(key, "cls.") || k == "embeddings.token_type_embeddings.weight" ||
        k == "embeddings.position_ids")
      return Ignored();  // BLIP-2's BERT has no pooler, MLM head or token types
    std::string name;
    if (k == "embeddings.word_embeddings.weight" || k == "embeddings.position_embeddings.weight" ||
        StartsWith(k, "embeddings.LayerNorm.")) {
      name = k;
    } else if (StartsWith(k, "encoder.layer.")) {
      const std::string rest = k.substr(std::string("encoder.layer.").size());
      const int index = std::stoi(rest.substr(0, rest.find('.')));
      if (index >= layers) return Ignored();  // only the first `layers` BERT layers are used
      name = k;
    } else {
      return std::nullopt;
    }
    Mapping mapping;
    const torch::Tensor tensor = f.Get(key);
    for (const std::string& prefix : targets) mapping.targets.push_back({prefix + name, tensor});
    return mapping;
  };
  LoadReport report = Apply(model, path, "", map);
  // "Left as initialised" only within the Q-Formers (cross-attention, query FFN, query tokens).
  std::vector<std::string> missing;
  for (const std::string& name : report.missing)
    for (const std::string& prefix : targets)
      if (StartsWith(name, prefix)) missing.push_back(name);
  report.missing = missing;
  IF_REQUIRE(!report.loaded.empty(), path, ": no tensor of the BERT checkpoint matches (expected names like "
             "'bert.encoder.layer.0.attention.self.query.weight')");
  return report;
}

LoadReport LoadT5(InstructFlipImpl& model, const std::string& path) {
  IF_REQUIRE(!model.t5_model.is_empty(), "model variant '", VariantName(model.config().variant), "' has no T5");
  const bool tied = model.config().t5.tie_word_embeddings;
  auto map = [&](const std::string& key, const SafetensorsFile& f) -> std::optional<Mapping> {
    if (key == "encoder.embed_tokens.weight" || key == "decoder.embed_tokens.weight") return Ignored();  // = shared
    if (key == "lm_head.weight" && tied) return Ignored();
    if (key == "shared.weight" || key == "lm_head.weight" || StartsWith(key, "encoder.") || StartsWith(key, "decoder."))
      return One("t5_model." + key, f.Get(key));
    return std::nullopt;
  };
  LoadReport report = Apply(model, path, "t5_model.", map);
  // LoRA adapters are ours, not the checkpoint's: they start as initialised (B = 0, no change).
  report.missing.erase(std::remove_if(report.missing.begin(), report.missing.end(), IsLoraParameter),
                       report.missing.end());
  IF_REQUIRE(!report.loaded.empty(), path, ": no tensor of the T5 checkpoint matches (expected names like "
             "'encoder.block.0.layer.0.SelfAttention.q.weight')");
  IF_REQUIRE(report.missing.empty(),
             path, ": T5 checkpoint lacks ", report.missing.size(), " tensors the frozen LLM needs, e.g. '",
             report.missing.front(), "'");
  return report;
}

void SaveModelWeights(torch::nn::Module& model, const std::string& path,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::set<const void*> seen;  // a tied tensor is stored once, under its first name
  for (const auto& item : model.named_parameters(true))
    if (seen.insert(item.value().data_ptr()).second) tensors.push_back({item.key(), item.value()});
  for (const auto& item : model.named_buffers(true)) tensors.push_back({item.key(), item.value()});
  SaveSafetensors(path, tensors, metadata);
}

void LoadModelWeights(torch::nn::Module& model, const std::string& path) {
  const std::unique_ptr<SafetensorsFile> file = SafetensorsFile::Open(path);
  std::set<std::string> in_file;
  for (const auto& info : file->tensors()) in_file.insert(info.name);
  torch::NoGradGuard no_grad;
  std::set<const void*> done;
  auto fill = [&](const std::string& name, torch::Tensor& target) {
    if (!done.insert(target.data_ptr()).second && !in_file.count(name)) return;  // tied, stored once
    IF_REQUIRE(in_file.count(name), path, ": missing tensor '", name, "' (checkpoint of another model config?)");
    const torch::Tensor source = file->Get(name);
    IF_REQUIRE(source.sizes() == target.sizes(), path, ": tensor '", name, "' has shape ", source.sizes(),
               ", the model has ", target.sizes(), " (checkpoint of another model config?)");
    target.copy_(source.to(target.scalar_type()));
    in_file.erase(name);
  };
  for (auto& item : model.named_parameters(true)) fill(item.key(), item.value());
  for (auto& item : model.named_buffers(true)) fill(item.key(), item.value());
  IF_REQUIRE(in_file.empty(), path, ": unexpected tensor '", *in_file.begin(),
             "' (checkpoint of another model config?)");
}

}  // namespace instructflip
