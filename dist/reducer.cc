#include "dist/reducer.h"

#include <chrono>
#include <sstream>
#include <unordered_set>

#include "dataio/base/check.h"

namespace instructflip {

GradientReducer::GradientReducer(std::vector<torch::Tensor> parameters, Communicator* communicator,
                                 ReducerOptions options)
    : parameters_(std::move(parameters)), communicator_(communicator), options_(options) {
  location_.resize(parameters_.size());
  filled_.assign(parameters_.size(), false);
  // Reverse order: the last layers' gradients arrive first in backward.
  Bucket current;
  int64_t current_bytes = 0;
  auto close = [&] {
    if (current.parameters.empty()) return;
    current.buffer = torch::zeros({current.offsets.back() + parameters_[current.parameters.back()].numel()},
                                  torch::kFloat32);
    buckets_.push_back(std::move(current));
    current = Bucket();
    current_bytes = 0;
  };
  for (size_t n = parameters_.size(); n-- > 0;) {
    const torch::Tensor& p = parameters_[n];
    IF_REQUIRE(p.scalar_type() == torch::kFloat32 && p.device() == parameters_[0].device(),
               "gradient reducer: parameters must be fp32 master weights on one device");
    const int64_t offset = current.parameters.empty()
                               ? 0
                               : current.offsets.back() + parameters_[current.parameters.back()].numel();
    location_[n] = {buckets_.size(), current.parameters.size()};
    current.parameters.push_back(n);
    current.offsets.push_back(offset);
    current_bytes += p.numel() * 4;
    const int64_t cap = buckets_.empty() ? options_.first_bucket_bytes : options_.bucket_bytes;
    if (current_bytes >= cap) close();
  }
  close();
  for (Bucket& b : buckets_) b.buffer = b.buffer.to(parameters_[0].device());
  for (size_t n = 0; n < parameters_.size(); ++n)
    hooks_.push_back(
        parameters_[n].register_hook([this, n](const torch::Tensor& gradient) { OnGradient(n, gradient); }));
}

GradientReducer::~GradientReducer() {
  // The hooks capture `this`: take them off the (longer-lived) parameters.
  for (size_t n = 0; n < parameters_.size(); ++n) parameters_[n].remove_hook(hooks_[n]);
}

void GradientReducer::Prepare(bool sync, const torch::Tensor& loss) {
  sync_ = sync;
  if (!sync) return;
  IF_CHECK(next_to_launch_ == 0) << "Prepare(sync) while buckets of the previous step are in flight";
  std::fill(filled_.begin(), filled_.end(), false);
  for (Bucket& b : buckets_) b.remaining = static_cast<int64_t>(b.parameters.size());
  stats_ = ReducerStats{static_cast<int64_t>(buckets_.size()), 0, 0, 0};
  FillUnreachable(loss);
}

void GradientReducer::FillUnreachable(const torch::Tensor& loss) {
  // Every node backward will run; a parameter's gradient ends in its
  // accumulator node, which exists only while a graph uses the parameter.
  std::unordered_set<const torch::autograd::Node*> reachable;
  std::vector<const torch::autograd::Node*> pending;
  if (loss.requires_grad()) pending.push_back(torch::autograd::impl::gradient_edge(loss).function.get());
  while (!pending.empty()) {
    const torch::autograd::Node* node = pending.back();
    pending.pop_back();
    if (node == nullptr || !reachable.insert(node).second) continue;
    for (const torch::autograd::Edge& edge : node->next_edges()) pending.push_back(edge.function.get());
  }
  for (size_t n = 0; n < parameters_.size(); ++n) {
    const std::shared_ptr<torch::autograd::Node> accumulator =
        torch::autograd::impl::try_get_grad_accumulator(parameters_[n]);
    if (accumulator && reachable.count(accumulator.get())) continue;
    FillSlot(n, torch::Tensor());
    ++stats_.unused_parameters;
  }
  if (options_.overlap) LaunchReadyBuckets(/*in_backward=*/true);
}

void GradientReducer::FillSlot(size_t n, const torch::Tensor& incoming) {
  const auto [bucket_index, slot] = location_[n];
  Bucket& bucket = buckets_[bucket_index];
  torch::Tensor view = bucket.buffer.narrow(0, bucket.offsets[slot], parameters_[n].numel());
  const torch::Tensor& accumulated = parameters_[n].grad();
  if (incoming.defined()) {
    view.copy_(incoming.reshape({-1}));
    if (accumulated.defined()) view.add_(accumulated.reshape({-1}));
  } else if (accumulated.defined()) {
    view.copy_(accumulated.reshape({-1}));
  } else {
    view.zero_();
  }
  filled_[n] = true;
  --bucket.remaining;
}

void GradientReducer::OnGradient(size_t n, const torch::Tensor& gradient) {
  if (!sync_ || filled_[n]) return;
  FillSlot(n, gradient);
  if (options_.overlap) LaunchReadyBuckets(/*in_backward=*/true);
}

void GradientReducer::LaunchReadyBuckets(bool in_backward) {
  while (next_to_launch_ < buckets_.size() && buckets_[next_to_launch_].remaining == 0) {
    Bucket& bucket = buckets_[next_to_launch_++];
    bucket.work = communicator_->AllReduceAsync(bucket.buffer, ReduceOp::kAverage);
    ++(in_backward ? stats_.launched_in_backward : stats_.launched_in_finalize);
  }
}

void GradientReducer::Finalize() {
  if (!sync_) return;
  const auto start = std::chrono::steady_clock::now();
  // Parameters without a gradient this step contribute what they accumulated (or zeros).
  for (size_t n = 0; n < parameters_.size(); ++n)
    if (!filled_[n]) FillSlot(n, torch::Tensor());
  LaunchReadyBuckets(/*in_backward=*/false);
  for (Bucket& bucket : buckets_) {
    bucket.work->Wait();
    bucket.work.reset();
    for (size_t slot = 0; slot < bucket.parameters.size(); ++slot) {
      torch::Tensor& p = parameters_[bucket.parameters[slot]];
      const torch::Tensor reduced = bucket.buffer.narrow(0, bucket.offsets[slot], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(reduced);
      } else {
        p.mutable_grad() = reduced.clone();
      }
    }
  }
  next_to_launch_ = 0;
  sync_ = false;
  stats_.finalize_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BroadcastParameters(const std::vector<torch::Tensor>& parameters, Communicator* communicator) {
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : parameters) {
    torch::Tensor data = p.detach();
    communicator->Broadcast(data, 0);
  }
}

void CheckParametersConsistent(const std::vector<torch::Tensor>& parameters, Communicator* communicator,
                               const std::string& when) {
  torch::NoGradGuard no_grad;
  // Sum and sum of squares weighted by position: cheap, and sensitive to any change.
  double sum = 0, weighted = 0;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const double s = parameters[i].to(torch::kFloat64).sum().item<double>();
    sum += s;
    weighted += (i + 1) * parameters[i].to(torch::kFloat64).pow(2).sum().item<double>();
  }
  torch::Tensor mine = torch::tensor({sum, weighted}, torch::kFloat64).view({1, 2});
  const torch::Tensor all = communicator->AllGather(mine);
  for (int r = 1; r < communicator->size(); ++r) {
    if (torch::equal(all[r], all[0])) continue;
    std::ostringstream values;
    for (int k = 0; k < communicator->size(); ++k)
      values << " rank " << k << ": (" << all[k][0].item<double>() << ", " << all[k][1].item<double>() << ")";
    IF_FAIL("parameters differ across ranks ", when, ";", values.str());
  }
}

}  // namespace instructflip
