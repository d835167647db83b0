// Weights in and out of the model.
//
// Pretrained components come as users download them from Hugging Face, as
// safetensors files: openai/clip-vit-base-patch16 (CLIPVisionModel or the full
// CLIPModel; OpenAI's own "visual.*" state-dict names are accepted too),
// bert-base-uncased (its first N layers initialise both Q-Formers; cross-
// attention, the query feed-forward and the query tokens stay freshly
// initialised, as the reference does) and google/flan-t5-base. Each load
// returns a report of what was filled, what stayed as initialised and which
// checkpoint tensors were not used; a shape mismatch in a tensor we need is an
// error naming the key. Our own checkpoints are safetensors with our names,
// loaded strictly.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dataio/base/torch_compat.h"
#include "model/instruct_flip.h"
#include "model/safetensors.h"

namespace instructflip {

struct LoadReport {
  std::string source;
  std::vector<std::string> loaded;      // model parameters filled from the file
  std::vector<std::string> missing;     // model parameters of that component left as initialised
  std::vector<std::string> unexpected;  // file tensors nothing uses
  std::vector<std::string> ignored;     // file tensors we know and skip (text tower, pooler, deeper layers, ...)
  std::string Summary() const;          // one line with counts, then the names of missing/unexpected
};

// A pretrained component as the Hugging Face hub lays it out: a .safetensors
// file, or a model directory holding config.json and either model.safetensors
// or the shards (model-0000k-of-0000n.safetensors) that
// model.safetensors.index.json maps every tensor to (FLAN-T5 large and xl come
// sharded). A PyTorch pickle (.bin .pt .pth .ckpt), or a directory holding only
// such files, is refused with the command that converts it: unpickling runs
// code, so we never do it.
struct PretrainedFiles {
  std::vector<std::string> weights;  // the file, or each shard once
  std::string config;                // the directory's config.json; "" for a bare file
};
PretrainedFiles FindPretrainedFiles(const std::string& path);

// Each reads `path` as FindPretrainedFiles does (errors name it). With a
// config.json, its shape fields are checked against the model configuration
// first: a mismatch names config.json's field and value and ours.
LoadReport LoadClipVision(InstructFlipImpl& model, const std::string& path);
LoadReport LoadBertIntoQFormers(InstructFlipImpl& model, const std::string& path);
LoadReport LoadT5(InstructFlipImpl& model, const std::string& path);

// Every parameter and buffer under our names, plus `metadata` (e.g. the config).
void SaveModelWeights(torch::nn::Module& model, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});
// Strict: a missing or unexpected tensor, or a shape mismatch, is an error naming it.
void LoadModelWeights(torch::nn::Module& model, const std::string& path);
// Strict over the union of `paths` (a deployment bundle keeps the frozen T5 in
// a file of its own). File tensors under `skip_prefix` ("t5_model.") are
// passed over when the model has no such tensor: a model built without its
// language model scores with a full checkpoint.
void LoadModelWeights(torch::nn::Module& model, const std::vector<std::string>& paths,
                      const std::string& skip_prefix = "");

}  // namespace instructflip
