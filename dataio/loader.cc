#include "dataio/loader.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "dataio/base/check.h"
#include "dataio/jpeg_codec.h"
#include "dataio/ssl_views.h"
#include "dataio/base/rng.h"

namespace instructflip {

Loader::Loader(std::shared_ptr<const Store> store, LoaderOptions options, LoaderState start)
    : store_(std::move(store)), options_(std::move(options)), start_(start) {
  const LoaderOptions& o = options_;
  IF_REQUIRE(o.batch_size >= 1, "batch size must be >= 1, got ", o.batch_size);
  IF_REQUIRE(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "rank ", o.rank,
             " is not in a world of size ", o.world_size);
  IF_REQUIRE(o.threads >= 1 && o.threads <= 256, "loader threads must be in 1..256, got ", o.threads);
  IF_REQUIRE(o.prefetch >= 1, "prefetch must be >= 1, got ", o.prefetch);
  image_size_ = o.image_size > 0 ? o.image_size : store_->image_size();

  const std::vector<int> domains = store_->ResolveDomains(o.domains);
  const SampleTable& table = store_->table();
  // Both splits: a frame that a dataset's lists name in train and in test (the
  // MCIO lists do) is one frame of the dataset, counted once (its first copy).
  std::set<std::pair<int32_t, std::string>> seen;
  for (int64_t i = 0; i < table.size(); ++i) {
    const bool domain_ok =
        domains.empty() || std::find(domains.begin(), domains.end(), table.domain[i]) != domains.end();
    const bool split_ok = !o.split || table.split[i] == static_cast<int8_t>(*o.split);
    const bool type_ok = o.spoof_types.empty() || std::find(o.spoof_types.begin(), o.spoof_types.end(),
                                                             table.spoof_type[i]) != o.spoof_types.end();
    if (!domain_ok || !split_ok || !type_ok) continue;
    if (!o.split && !seen.emplace(table.domain[i], table.source[i]).second) continue;  // a later copy
    eligible_.push_back(i);
  }
  IF_REQUIRE(o.first >= 0, "loader: first must be >= 0, got ", o.first);
  if (o.first > 0 && static_cast<int64_t>(eligible_.size()) > o.first) eligible_.resize(o.first);
  eligible_ = ApplyHoldout(eligible_, table, o.holdout);
  std::string domain_list;
  for (const std::string& d : o.domains) domain_list += (domain_list.empty() ? "" : ",") + d;
  IF_REQUIRE(!eligible_.empty(), "store '", store_->dir(), "' has no samples for domains [",
             o.domains.empty() ? "all" : domain_list, "] split '",
             o.split ? kSplits.Name(*o.split) : "any", "'", o.spoof_types.empty() ? "" : " of the selected spoof types",
             o.holdout.part == Holdout::Part::kValidation ? " in the validation hold-out" : "");
  order_ = BuildEpochOrder(eligible_, table, o.sampler, start_.epoch);

  const int64_t length = static_cast<int64_t>(order_.size());
  const int64_t global = static_cast<int64_t>(o.batch_size) * o.world_size;
  IF_REQUIRE(start_.position >= 0 && start_.position <= length, "loader position ", start_.position,
             " is outside epoch ", start_.epoch, " of ", length, " samples");
  const int64_t multiple = o.drop_multiple > 0 ? o.drop_multiple : global;
  IF_REQUIRE(multiple % global == 0, "loader: drop_multiple ", multiple, " is not a multiple of batch x world size ",
             global);
  usable_length_ = o.drop_last ? length / multiple * multiple : length;
  const int64_t remaining = std::max<int64_t>(0, usable_length_ - start_.position);
  num_batches_ = o.drop_last ? remaining / global : (remaining + global - 1) / global;

  // Up to `prefetch` batches are built ahead, and at least one per thread.
  batches_ = std::make_unique<OrderedParallel<Batch>>(num_batches_, o.threads, std::max(o.prefetch, o.threads),
                                                      [this](int64_t k) { return BuildBatch(k); });
}

Loader::~Loader() = default;

std::optional<Batch> Loader::Next() { return batches_->Next(); }

torch::Tensor Loader::AcquireImageBuffer() {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  // A buffer is free when the pool holds the only reference to it and its storage.
  for (const torch::Tensor& buffer : image_pool_)
    if (buffer.use_count() == 1 && buffer.storage().use_count() == 1) return buffer;
  const int64_t B = options_.batch_size, H = image_size_, W = image_size_;
  image_pool_.push_back(torch::empty(
      {B, 3, H, W}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(options_.pin_memory)));
  return image_pool_.back();
}

Batch Loader::BuildBatch(int64_t k) {
  const LoaderOptions& o = options_;
  const int64_t B = o.batch_size;
  const int64_t length = static_cast<int64_t>(order_.size());
  const int64_t global = B * o.world_size;
  const int64_t batch_start = start_.position + k * global;
  const int64_t first = batch_start + o.rank * B;  // this rank's first position
  const int64_t H = image_size_, W = image_size_;

  Batch batch;
  auto int_options = torch::TensorOptions().dtype(torch::kInt64).pinned_memory(o.pin_memory);
  batch.images = AcquireImageBuffer();
  batch.label = torch::zeros({B}, int_options);
  batch.spoof_type = torch::zeros({B}, int_options);
  batch.illumination = torch::full({B}, -1, int_options);
  batch.environment = torch::full({B}, -1, int_options);
  batch.camera_quality = torch::full({B}, -1, int_options);
  batch.domain = torch::full({B}, -1, int_options);
  batch.video_id = torch::full({B}, -1, int_options);
  batch.subject_id = torch::full({B}, -1, int_options);
  batch.sample_index = torch::full({B}, -1, int_options);
  batch.valid = torch::zeros({B}, torch::TensorOptions().dtype(torch::kBool).pinned_memory(o.pin_memory));

  if (o.ssl_views) batch.ssl_views = torch::zeros({2, B, 3, H, W}, torch::TensorOptions().pinned_memory(o.pin_memory));
  float* images = batch.images.data_ptr<float>();
  int64_t* label = batch.label.data_ptr<int64_t>();
  int64_t* spoof_type = batch.spoof_type.data_ptr<int64_t>();
  int64_t* illumination = batch.illumination.data_ptr<int64_t>();
  int64_t* environment = batch.environment.data_ptr<int64_t>();
  int64_t* camera_quality = batch.camera_quality.data_ptr<int64_t>();
  int64_t* domain = batch.domain.data_ptr<int64_t>();
  int64_t* video_id = batch.video_id.data_ptr<int64_t>();
  int64_t* subject_id = batch.subject_id.data_ptr<int64_t>();
  int64_t* sample_index = batch.sample_index.data_ptr<int64_t>();
  bool* valid = batch.valid.data_ptr<bool>();

  thread_local std::vector<uint8_t> bytes;
  thread_local RgbImage decoded, resized;
  const SampleTable& t = store_->table();
  for (int64_t j = 0; j < B; ++j) {
    float* out = images + j * 3 * H * W;
    const int64_t position = first + j;
    if (position >= length) {  // padding past the end of the epoch (evaluation)
      std::memset(out, 0, sizeof(float) * 3 * H * W);
      continue;
    }
    const int64_t i = order_[position];
    store_->DecodeSample(i, &bytes, &decoded);
    const RgbImage* image = &decoded;
    if (decoded.height != H || decoded.width != W) {
      ResizeBilinear(decoded, static_cast<int>(H), static_cast<int>(W), &resized);
      image = &resized;
    }
    const AugmentParams params = SampleAugmentParams(
        o.augment, HashKeys({o.sampler.seed, static_cast<uint64_t>(start_.epoch),
                             static_cast<uint64_t>(position)}));
    TransformToChw(image->pixels.data(), static_cast<int>(H), static_cast<int>(W), params, o.normalize, out);
    if (o.ssl_views)
      for (int64_t view = 0; view < 2; ++view) {
        constexpr uint64_t kSslStream = 0x73736c;  // "ssl"
        const SslViewParams ssl = SampleSslViewParams(
            image->width, image->height,
            HashKeys({o.sampler.seed, static_cast<uint64_t>(start_.epoch), static_cast<uint64_t>(position), kSslStream,
                      static_cast<uint64_t>(view)}));
        MakeSslView(*image, static_cast<int>(H), ssl, o.normalize, batch.ssl_views[view][j].data_ptr<float>());
      }
    label[j] = t.label[i];
    spoof_type[j] = t.spoof_type[i];
    illumination[j] = t.illumination[i];
    environment[j] = t.environment[i];
    camera_quality[j] = t.camera_quality[i];
    domain[j] = t.domain[i];
    video_id[j] = t.video_id[i];
    subject_id[j] = t.subject_id[i];
    sample_index[j] = i;
    valid[j] = true;
  }

  // Resume point: the next global batch, or the next epoch if none is left.
  const int64_t next = batch_start + global;
  const bool epoch_done = o.drop_last ? next + global > usable_length_ : next >= length;
  batch.state_after = epoch_done ? LoaderState{start_.epoch + 1, 0} : LoaderState{start_.epoch, next};
  return batch;
}

}  // namespace instructflip
