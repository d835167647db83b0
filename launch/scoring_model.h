// A trained model as `predict` and `export` use it: its configuration, its
// weights, the decision threshold and the scoring rule it was validated with.
// It comes from one of
//   a deployment bundle   (`instructflip export`; bundle.json inside)
//   a LODO job directory  (jobs/NAME with result.json: the selected checkpoint,
//                          the threshold the job chose without target data)
//   a checkpoint          (RUN/checkpoints/step-N or its model.safetensors; a
//                          threshold only when RUN is a LODO job that selected it)
// None needs the store, the training YAML or the pretrained files: a
// checkpoint's weights carry the resolved configuration they were trained with.
//
// A bundle is one directory:
//   bundle.json                 format, version and git revision of the build that
//                               wrote it, threshold and how it was chosen, scoring
//                               rule and seed, image preprocessing, source checkpoint
//   model.yaml                  the model configuration (configs/model/ keys)
//   model.safetensors           every tensor but the frozen T5's (format: pt)
//   language_model.safetensors  the T5's (only `predict --explain` reads it)
//   tokenizer/vocab.txt, tokenizer/spiece.model  when the model uses such files
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/build.h"
#include "model/instructions.h"

namespace instructflip::launch {

struct ScoringModel {
  std::string description;  // what it is, for outputs and errors ("LODO job runs/x/jobs/A, step 40")
  ModelConfig config;       // pretrained files cleared (the weights replace them)
  std::string weights;      // every tensor, or (bundle) all but the T5's
  std::string language_model_weights;  // bundle: the T5's own file; else empty (in `weights`)
  ScoringStyleQuestion style_question = ScoringStyleQuestion::kUniform;
  uint64_t seed = 0;        // seeds the uniform style-question draw, as in evaluation
  std::optional<double> threshold;
  std::string threshold_rule;  // how it was chosen
  int64_t step = -1;           // training step of the weights (-1 unknown)
  std::string instructflip_version;  // a bundle's: the build that exported it
};

// Reads `path` as one of the three forms above; throws instructflip::Error
// naming the path and what is missing.
ScoringModel FindScoringModel(const std::string& path);

// Builds the model and loads its weights (without the T5 unless
// `language_model`), on the CPU.
BuiltModel LoadScoringModel(const ScoringModel& scoring, bool language_model);

// Writes a bundle of `scoring` into `out_dir` (absent or empty; written into a
// temporary sibling and renamed, so a failure leaves nothing half-written).
void ExportBundle(const ScoringModel& scoring, const std::string& out_dir);

// Writes the model's CLIP vision tower as a Hugging Face CLIPVisionModel
// directory: config.json + model.safetensors ("vision_model.*" names, format:
// pt); as ExportBundle, whole or not at all.
void ExportHuggingFaceClipVision(InstructFlipImpl& model, const std::string& out_dir);

// An export output directory: absent or empty, else an Error naming `flag`.
void RequireAbsentOrEmpty(const std::string& dir, const char* flag);

}  // namespace instructflip::launch
