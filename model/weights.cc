#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

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

// Copies mapped tensors of every file into the model's parameters under `component_prefix`.
LoadReport Apply(torch::nn::Module& model, const std::string& source, const std::vector<std::string>& files,
                 const std::string& component_prefix,
                 const std::function<std::optional<Mapping>(const std::string&, const SafetensorsFile&)>& map) {
  LoadReport report;
  report.source = source;
  auto params = model.named_parameters(/*recurse=*/true);
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  for (const std::string& path : files) {
    const std::unique_ptr<SafetensorsFile> file = SafetensorsFile::Open(path);
    for (const SafetensorsTensorInfo& info : file->tensors()) {
      const std::optional<Mapping> mapping = map(info.name, *file);
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
        torch::Tensor source_tensor = tensor;
        const bool vocabulary_prefix = target.find("word_embeddings") != std::string::npos &&
                                       source_tensor.dim() == 2 && source_tensor.size(1) == param->size(1) &&
                                       source_tensor.size(0) < param->size(0);
        if (vocabulary_prefix) {
          // BLIP-2 appends [DEC] to BERT's vocabulary: copy the known rows, keep the new one.
          param->narrow(0, 0, source_tensor.size(0)).copy_(source_tensor.to(param->scalar_type()));
        } else {
          IF_REQUIRE(source_tensor.sizes() == param->sizes(), path, ": tensor '", info.name, "' has shape ",
                     source_tensor.sizes(), " but model parameter '", target, "' has shape ", param->sizes());
          param->copy_(source_tensor.to(param->scalar_type()));
        }
        filled.insert(target);
        report.loaded.push_back(target);
      }
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

bool IsPickle(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".ckpt" || ext == ".pkl";
}

[[noreturn]] void RefusePickle(const std::string& path) {
  IF_FAIL(path, " is a PyTorch pickle: instructflip reads safetensors only (unpickling can run code). Convert it "
          "once with Python: from transformers import AutoModel; AutoModel.from_pretrained(DIR)"
          ".save_pretrained(DIR, safe_serialization=True), or, for a bare state dict, "
          "safetensors.torch.save_file({k: v.contiguous() for k, v in torch.load(FILE, map_location='cpu', "
          "weights_only=True).items()}, 'model.safetensors', metadata={'format': 'pt'})");
}

// A config.json of a Hugging Face model, checked field by field against ours.
class HfConfig {
 public:
  explicit HfConfig(const std::string& path) : path_(path) {
    try {
      json_ = nlohmann::json::parse(ReadFile(path));
    } catch (const nlohmann::json::exception& e) {
      IF_FAIL(path, ": not valid JSON (", e.what(), ")");
    }
    IF_REQUIRE(json_.is_object(), path, ": not a JSON object");
  }
  // The settings nested under `section` when there are any (CLIPModel's
  // vision_config), else these.
  HfConfig Within(const std::string& section) const {
    if (!Has(section.c_str())) return *this;
    HfConfig nested = *this;
    nested.section_ = section;
    nested.json_ = json_.at(section);
    IF_REQUIRE(nested.json_.is_object(), path_, ": '", section, "' is not a JSON object");
    return nested;
  }
  // config.json's `key` (Hugging Face's default `hf_default` when absent) must equal `ours`.
  template <typename T>
  void Expect(const char* key, T hf_default, T ours, const std::string& our_field) const {
    const T theirs = Get(key, hf_default);
    bool same = theirs == ours;
    if constexpr (std::is_floating_point_v<T>) same = std::abs(theirs - ours) <= 1e-6 * std::abs(ours);
    IF_REQUIRE(same, path_, ": '", Where(key), "' is ", theirs, " but the model configuration has ", our_field, " = ",
               ours, " (a checkpoint of another size? use a model YAML that matches it)");
  }
  bool Has(const char* key) const { return json_.contains(key) && !json_.at(key).is_null(); }
  std::string String(const char* key, const std::string& hf_default) const { return Get(key, hf_default); }
  int Int(const char* key, int hf_default) const { return Get(key, hf_default); }
  std::string Where(const char* key) const { return section_.empty() ? key : section_ + "." + key; }
  // `key`'s value, Hugging Face's default when absent or null.
  template <typename T>
  T Get(const char* key, T hf_default) const {
    if (!Has(key)) return hf_default;
    try {
      return json_.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      IF_FAIL(path_, ": '", Where(key), "' has an unexpected type (", json_.at(key).dump(), ")");
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_, section_;
  nlohmann::json json_;
};

void CheckClipConfig(const ModelConfig& c, const std::string& path) {
  // CLIPModel nests the vision tower's settings; CLIPVisionModel has them on top.
  const HfConfig hf = HfConfig(path).Within("vision_config");
  const VisionConfig& v = c.vision;
  hf.Expect("hidden_size", 768, v.width, "vision.width");
  hf.Expect("intermediate_size", 3072, 4 * v.width, "4 x vision.width");
  hf.Expect("num_hidden_layers", 12, v.layers, "vision.layers");
  hf.Expect("num_attention_heads", 12, v.heads, "vision.heads");
  hf.Expect("image_size", 224, v.image_size, "vision.image_size");
  hf.Expect("patch_size", 32, v.patch_size, "vision.patch_size");
  hf.Expect("layer_norm_eps", 1e-5, v.layer_norm_eps, "vision.layer_norm_eps");
  hf.Expect<std::string>("hidden_act", "quick_gelu", "quick_gelu", "the CLIP activation (QuickGELU)");
}

void CheckBertConfig(const ModelConfig& c, const std::string& path) {
  const HfConfig hf(path);
  const QFormerConfig& q = c.qformer;
  hf.Expect("hidden_size", 768, q.hidden, "qformer.hidden");
  hf.Expect("intermediate_size", 3072, q.intermediate, "qformer.intermediate");
  hf.Expect("max_position_embeddings", 512, q.max_positions, "qformer.max_positions");
  const int layers = hf.Int("num_hidden_layers", 12);
  IF_REQUIRE(layers >= q.layers, path, ": 'num_hidden_layers' is ", layers, ", fewer than qformer.layers = ", q.layers,
             " (the Q-Formers start from BERT's first layers)");
  const int vocabulary = hf.Int("vocab_size", 30522);
  IF_REQUIRE(vocabulary <= q.vocab_size, path, ": 'vocab_size' is ", vocabulary, ", more than qformer.vocab_size = ",
             q.vocab_size);
}

void CheckT5Config(const ModelConfig& c, const std::string& path) {
  const HfConfig hf(path);
  const T5Config& t = c.t5;
  hf.Expect("d_model", 512, t.d_model, "t5.d_model");
  hf.Expect("d_kv", 64, t.d_kv, "t5.d_kv");
  hf.Expect("d_ff", 2048, t.d_ff, "t5.d_ff");
  hf.Expect("num_layers", 6, t.encoder_layers, "t5.encoder_layers");
  hf.Expect("num_decoder_layers", hf.Int("num_layers", 6), t.decoder_layers, "t5.decoder_layers");
  hf.Expect("num_heads", 8, t.heads, "t5.heads");
  hf.Expect("vocab_size", 32128, t.vocab_size, "t5.vocab_size");
  hf.Expect("relative_attention_num_buckets", 32, t.relative_buckets, "t5.relative_buckets");
  hf.Expect("relative_attention_max_distance", 128, t.relative_max_distance, "t5.relative_max_distance");
  hf.Expect("tie_word_embeddings", true, t.tie_word_embeddings, "t5.tie_word_embeddings");
  hf.Expect("layer_norm_epsilon", 1e-6, t.layer_norm_eps, "t5.layer_norm_eps");
  const std::string projection = hf.String("feed_forward_proj", "relu");
  IF_REQUIRE(projection.rfind("gated-", 0) == 0, path, ": 'feed_forward_proj' is '", projection,
             "', but our T5 is T5 v1.1's gated feed-forward (FLAN-T5: 'gated-gelu')");
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

PretrainedFiles FindPretrainedFiles(const std::string& path) {
  namespace fs = std::filesystem;
  IF_REQUIRE(fs::exists(path), path, ": no such file or directory");
  PretrainedFiles files;
  if (!fs::is_directory(path)) {
    if (IsPickle(path)) RefusePickle(path);
    files.weights = {path};
    return files;
  }
  const std::string config = JoinPath(path, "config.json");
  if (fs::is_regular_file(config)) files.config = config;
  const std::string single = JoinPath(path, "model.safetensors");
  const std::string index = JoinPath(path, "model.safetensors.index.json");
  if (fs::is_regular_file(single)) {
    files.weights = {single};
  } else if (fs::is_regular_file(index)) {
    nlohmann::json map;
    try {
      map = nlohmann::json::parse(ReadFile(index)).at("weight_map");
    } catch (const nlohmann::json::exception& e) {
      IF_FAIL(index, ": no 'weight_map' of tensor names to shard files (", e.what(), ")");
    }
    IF_REQUIRE(map.is_object() && !map.empty(), index, ": 'weight_map' is empty");
    std::set<std::string> seen;
    for (const auto& [tensor, shard] : map.items()) {
      IF_REQUIRE(shard.is_string(), index, ": 'weight_map.", tensor, "' is not a file name");
      const std::string name = shard.get<std::string>();
      IF_REQUIRE(name.find('/') == std::string::npos && name != ".." && !name.empty(), index, ": shard '", name,
                 "' is not a file name in ", path);
      const std::string file = JoinPath(path, name);
      IF_REQUIRE(fs::is_regular_file(file), index, ": shard '", name, "' (of tensor '", tensor, "') is missing");
      if (seen.insert(name).second) files.weights.push_back(file);
    }
  } else {
    for (const auto& entry : fs::directory_iterator(path))
      if (IsPickle(entry.path().string())) RefusePickle(entry.path().string());
    IF_FAIL(path, ": no model.safetensors or model.safetensors.index.json (a Hugging Face model directory holds one)");
  }
  return files;
}

LoadReport LoadClipVision(InstructFlipImpl& model, const std::string& path) {
  const PretrainedFiles files = FindPretrainedFiles(path);
  if (!files.config.empty()) CheckClipConfig(model.config(), files.config);
  LoadReport report = Apply(model, path, files.weights, "visual_encoder.", MapClip);
  IF_REQUIRE(!report.loaded.empty(), path, ": no tensor of the CLIP checkpoint matches a vision tower (expected names like "
             "'vision_model.encoder.layers.0.self_attn.q_proj.weight' or 'visual.conv1.weight')");
  return report;
}

LoadReport LoadBertIntoQFormers(InstructFlipImpl& model, const std::string& path) {
  std::vector<std::string> targets;
  if (!model.content_Qformer.is_empty()) targets.push_back("content_Qformer.");
  if (!model.style_Qformer.is_empty()) targets.push_back("style_Qformer.");
  IF_REQUIRE(!targets.empty(), "model variant '", kVariants.Name(model.config().variant), "' has no Q-Former to load BERT into");
  const int layers = model.config().qformer.layers;
  const PretrainedFiles files = FindPretrainedFiles(path);
  if (!files.config.empty()) CheckBertConfig(model.config(), files.config);
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
  LoadReport report = Apply(model, path, files.weights, "", map);
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
  IF_REQUIRE(!model.t5_model.is_empty(), "model variant '", kVariants.Name(model.config().variant), "' has no T5");
  const bool tied = model.config().t5.tie_word_embeddings;
  const PretrainedFiles files = FindPretrainedFiles(path);
  if (!files.config.empty()) CheckT5Config(model.config(), files.config);
  auto map = [&](const std::string& key, const SafetensorsFile& f) -> std::optional<Mapping> {
    if (key == "encoder.embed_tokens.weight" || key == "decoder.embed_tokens.weight") return Ignored();  // = shared
    if (key == "lm_head.weight" && tied) return Ignored();
    if (key == "shared.weight" || key == "lm_head.weight" || StartsWith(key, "encoder.") || StartsWith(key, "decoder."))
      return One("t5_model." + key, f.Get(key));
    return std::nullopt;
  };
  LoadReport report = Apply(model, path, files.weights, "t5_model.", map);
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

void LoadModelWeights(torch::nn::Module& model, const std::string& path) { LoadModelWeights(model, std::vector{path}); }

void LoadModelWeights(torch::nn::Module& model, const std::vector<std::string>& paths, const std::string& skip_prefix) {
  IF_REQUIRE(!paths.empty(), "no weight file to load");
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, size_t> in_file;  // tensor name -> file
  for (const std::string& path : paths) {
    files.push_back(SafetensorsFile::Open(path));
    for (const auto& info : files.back()->tensors()) {
      const auto [at, fresh] = in_file.emplace(info.name, files.size() - 1);
      IF_REQUIRE(fresh, path, ": tensor '", info.name, "' is also in ", paths[at->second]);
    }
  }
  const std::string where = paths.size() == 1 ? paths[0] : paths[0] + " (and " + std::to_string(paths.size() - 1) + " more)";
  torch::NoGradGuard no_grad;
  std::set<const void*> done;
  auto fill = [&](const std::string& name, torch::Tensor& target) {
    const auto found = in_file.find(name);
    if (!done.insert(target.data_ptr()).second && found == in_file.end()) return;  // tied, stored once
    IF_REQUIRE(found != in_file.end(), where, ": missing tensor '", name, "' (checkpoint of another model config?)");
    const std::string& path = paths[found->second];
    const torch::Tensor source = files[found->second]->Get(name);
    IF_REQUIRE(source.sizes() == target.sizes(), path, ": tensor '", name, "' has shape ", source.sizes(),
               ", the model has ", target.sizes(), " (checkpoint of another model config?)");
    target.copy_(source.to(target.scalar_type()));
    in_file.erase(found);
  };
  for (auto& item : model.named_parameters(true)) fill(item.key(), item.value());
  for (auto& item : model.named_buffers(true)) fill(item.key(), item.value());
  for (auto it = in_file.begin(); it != in_file.end();)
    it = !skip_prefix.empty() && StartsWith(it->first, skip_prefix) ? in_file.erase(it) : std::next(it);
  IF_REQUIRE(in_file.empty(), paths[in_file.begin()->second], ": unexpected tensor '", in_file.begin()->first,
             "' (checkpoint of another model config?)");
}

}  // namespace instructflip
