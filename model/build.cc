#include "model/build.h"

#include "dataio/base/check.h"

namespace instructflip {

BuiltModel BuildModel(ModelConfig config, const BuildOptions& options) {
  BuiltModel out;
  out.tokenizers = BuildTokenizers(config.tokenizers);
  ResolveVocabularySizes(out.tokenizers, &config);
  out.config = config;
  out.model = InstructFlip(config, options.language_model);
  if (!options.pretrained) return out;
  const PretrainedConfig& p = config.pretrained;
  if (!p.clip.empty()) out.reports.push_back(LoadClipVision(*out.model, p.clip));
  if (!p.bert.empty() && !out.model->content_Qformer.is_empty())
    out.reports.push_back(LoadBertIntoQFormers(*out.model, p.bert));
  if (!p.t5.empty() && !out.model->t5_model.is_empty()) out.reports.push_back(LoadT5(*out.model, p.t5));
  for (const LoadReport& report : out.reports) LOG(INFO) << "pretrained " << report.Summary();
  return out;
}

}  // namespace instructflip
