#include "trainer/evaluator.h"

#include <filesystem>
#include <fstream>
#include <iomanip>

#include <nlohmann/json.hpp>

#include "dataio/check.h"
#include "dataio/file_util.h"
#include "model/instruction_batch.h"

namespace instructflip {
namespace {

nlohmann::json MetricsJson(const DomainMetrics& m) {
  auto number = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"videos", m.videos}, {"auc", number(m.auc)}, {"eer", m.eer}, {"hter", m.hter}, {"acc", m.acc},
          {"tpr_at_fpr_1pct", m.tpr_at_fpr_1pct}, {"threshold", number(m.threshold)}, {"apcer", m.apcer},
          {"bpcer", m.bpcer}, {"acer", m.acer}};
}

}  // namespace

EvalResult Evaluate(BuiltModel& built, const EvalOptions& o, Communicator* communicator, const std::string& out_dir) {
  auto store = Store::Open(o.store);
  IF_REQUIRE(!o.domains.empty(), "evaluation needs at least one target domain");
  store->ResolveDomains(o.domains);  // unknown names fail here, before any compute
  InstructionBatcher batcher(built.tokenizers.bert, built.tokenizers.t5, built.config, o.seed);
  built.model->eval();
  torch::NoGradGuard no_grad;
  EvalResult result;
  std::ofstream scores_csv;
  const bool writer = communicator->rank() == 0 && !out_dir.empty();
  if (writer) {
    std::filesystem::create_directories(out_dir);
    scores_csv.open(JoinPath(out_dir, "scores.csv"));
    scores_csv << "score,label,video_id,domain,sample_index\n" << std::setprecision(9);
  }
  std::vector<DomainMetrics> all;
  for (const std::string& domain : o.domains) {
    LoaderOptions lo;
    lo.domains = {domain};
    lo.split = o.split;
    lo.sampler.shuffle = false;
    lo.batch_size = o.batch_per_rank;
    lo.rank = communicator->rank();
    lo.world_size = communicator->size();
    lo.drop_last = false;  // padded: every sample exactly once
    lo.threads = o.loader_threads;
    lo.image_size = built.config.vision.image_size;
    Loader loader(store, lo);
    std::vector<double> rows;  // (sample_index, score, label, video_id) per valid sample
    while (auto batch = loader.Next()) {
      InstructFlipInputs in;
      in.images = batch->images;
      in.label = batch->label;
      batcher.Fill({batch->label, batch->spoof_type, batch->illumination, batch->environment, batch->camera_quality,
                    batch->sample_index.clamp_min(0)},
                   &in);
      const torch::Tensor score = built.model->forward(in, /*with_losses=*/false).spoof_score;
      for (int64_t j = 0; j < score.size(0); ++j) {
        if (!batch->valid[j].item<bool>()) continue;
        rows.insert(rows.end(), {double(batch->sample_index[j].item<int64_t>()), score[j].item<double>(),
                                 double(batch->label[j].item<int64_t>()), double(batch->video_id[j].item<int64_t>())});
      }
    }
    torch::Tensor mine = torch::tensor(rows, torch::kFloat64).view({-1, 4});
    const torch::Tensor gathered = communicator->AllGather(mine);
    const torch::Tensor order = gathered.select(1, 0).argsort();
    const torch::Tensor sorted = gathered.index_select(0, order);
    std::vector<ScoredSample> samples;
    for (int64_t i = 0; i < sorted.size(0); ++i) {
      ScoredSample s{sorted[i][1].item<double>(), static_cast<int>(sorted[i][2].item<double>()),
                     static_cast<int64_t>(sorted[i][3].item<double>())};
      samples.push_back(s);
      if (writer)
        scores_csv << s.score << "," << s.label << "," << s.video_id << "," << domain << ","
                   << static_cast<int64_t>(sorted[i][0].item<double>()) << "\n";
    }
    result.scores.insert(result.scores.end(), samples.begin(), samples.end());
    DomainMetrics m = ComputeMetrics(samples, o.threshold);
    if (writer) {
      std::ofstream roc(JoinPath(out_dir, "roc_" + domain + ".csv"));
      roc << "fpr,tpr,threshold\n";
      for (const RocPoint& p : m.roc) roc << p.fpr << "," << p.tpr << "," << p.threshold << "\n";
    }
    all.push_back(m);
    result.domains.push_back({domain, std::move(m)});
  }
  result.mean = MeanMetrics(all);
  if (writer) {
    const std::string mode = o.threshold ? "given threshold " + std::to_string(*o.threshold)
                                         : std::string("each domain's own EER threshold (the reference's mode)");
    nlohmann::json json;
    for (const auto& [domain, m] : result.domains) json["domains"][domain] = MetricsJson(m);
    json["mean"] = MetricsJson(result.mean);
    json["threshold_mode"] = mode;
    WriteFileAtomic(JoinPath(out_dir, "metrics.json"), json.dump(2) + "\n");
    std::ostringstream md;
    md << "Threshold: " << mode << "\n\n| domain | videos | EER | ACC | HTER | AUC | TPR@FPR=1% |\n"
       << "|---|---|---|---|---|---|---|\n" << std::fixed << std::setprecision(2);
    auto row = [&](const std::string& name, const DomainMetrics& m) {
      md << "| " << name << " | " << m.videos << " | " << m.eer << " | " << m.acc << " | " << m.hter << " | " << m.auc
         << " | " << m.tpr_at_fpr_1pct << " |\n";
    };
    for (const auto& [domain, m] : result.domains) row(domain, m);
    row("**mean**", result.mean);
    WriteFileAtomic(JoinPath(out_dir, "metrics.md"), md.str());
  }
  return result;
}

}  // namespace instructflip
