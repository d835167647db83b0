// T5Tokenizer and TrainSentencePiece over libsentencepiece (0.1.97), reached
// through the plugin of sentencepiece_backend.h.
//
// Encode/Decode follow HF T5Tokenizer for plain text (no special-token strings
// in the input): sentencepiece ids + </s>; decoding drops <pad> and stops at
// </s>. Training goes through SentencePieceTrainer::Train(args, iterator,
// &proto), so nothing touches the filesystem. The trainer keeps process-global
// state (log level, random seed), so training is serialised by a mutex.
#include "model/t5_tokenizer.h"

#include <mutex>
#include <sstream>
#include <utility>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "model/sentencepiece_backend.h"

namespace instructflip {

struct T5Tokenizer::Impl {
  std::unique_ptr<SentencePieceBackend> processor = CreateSentencePieceBackend();
};

T5Tokenizer::T5Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
T5Tokenizer::~T5Tokenizer() = default;

std::unique_ptr<T5Tokenizer> T5Tokenizer::Load(const std::string& model_proto,
                                               const std::string& where) {
  auto impl = std::make_unique<Impl>();
  const std::string error = impl->processor->Load(model_proto);
  IF_REQUIRE(error.empty(), where, ": not a valid sentencepiece model: ", error);
  // Encode appends </s> and batches pad with <pad>: both must exist.
  IF_REQUIRE(impl->processor->pad_id() >= 0 && impl->processor->eos_id() >= 0, where,
             ": sentencepiece model has no pad or eos piece (T5 needs pad=0, eos=1)");
  return std::unique_ptr<T5Tokenizer>(new T5Tokenizer(std::move(impl)));
}

std::unique_ptr<T5Tokenizer> T5Tokenizer::FromFile(const std::string& spiece_model_path) {
  IF_REQUIRE(PathExists(spiece_model_path), "cannot open sentencepiece model '", spiece_model_path,
             "': it does not exist");
  // ReadFile refuses a directory, device or FIFO (whose read would never end).
  return Load(ReadFile(spiece_model_path), "'" + spiece_model_path + "'");
}

std::unique_ptr<T5Tokenizer> T5Tokenizer::FromSerialized(const std::string& model_proto) {
  return Load(model_proto, "serialized T5 tokenizer");
}

std::vector<int64_t> T5Tokenizer::Encode(const std::string& text, bool add_eos) const {
  std::vector<int> pieces;
  const std::string error = impl_->processor->Encode(text, &pieces);
  IF_REQUIRE(error.empty(), "T5 tokenizer: cannot encode text: ", error);
  std::vector<int64_t> ids(pieces.begin(), pieces.end());
  if (add_eos) ids.push_back(eos_id());
  return ids;
}

std::string T5Tokenizer::Decode(const std::vector<int64_t>& ids) const {
  std::vector<int> pieces;
  for (int64_t id : ids) {
    IF_REQUIRE(id >= 0 && id < vocab_size(), "T5 tokenizer: id ", id, " outside [0, ", vocab_size(),
               ")");
    if (id == eos_id()) break;
    if (id != pad_id()) pieces.push_back(static_cast<int>(id));
  }
  std::string text;
  const std::string error = impl_->processor->Decode(pieces, &text);
  IF_REQUIRE(error.empty(), "T5 tokenizer: cannot decode ids: ", error);
  return text;
}

int64_t T5Tokenizer::pad_id() const { return impl_->processor->pad_id(); }
int64_t T5Tokenizer::eos_id() const { return impl_->processor->eos_id(); }
int64_t T5Tokenizer::unk_id() const { return impl_->processor->unk_id(); }
int64_t T5Tokenizer::vocab_size() const { return impl_->processor->piece_size(); }

std::string TrainSentencePiece(const std::vector<std::string>& sentences, int vocab_size,
                               uint64_t seed) {
  IF_REQUIRE(!sentences.empty(), "TrainSentencePiece: no sentences");
  IF_REQUIRE(vocab_size > 3, "TrainSentencePiece: vocab_size ", vocab_size,
             " leaves no room beyond pad/eos/unk");
  static std::mutex trainer_mutex;
  const std::lock_guard<std::mutex> lock(trainer_mutex);
  // T5's spiece.model settings (unigram, nmt_nfkc, dummy prefix) with a small
  // vocabulary; one thread makes the EM steps, hence the proto, deterministic;
  // minloglevel=1 silences the per-iteration INFO log. The seed only matters
  // when the trainer samples sentences; it is process-global in sentencepiece.
  std::ostringstream args;
  args << "--model_type=unigram --vocab_size=" << vocab_size
       << " --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"
       << " --pad_piece=<pad> --eos_piece=</s> --unk_piece=<unk>"
       << " --character_coverage=1.0 --hard_vocab_limit=false --num_threads=1 --minloglevel=1";
  std::string model_proto;
  const std::string error = CreateSentencePieceBackend()->Train(
      args.str(), sentences, static_cast<unsigned int>(seed ^ (seed >> 32)), &model_proto);
  IF_REQUIRE(error.empty(), "sentencepiece training failed: ", error);
  return model_proto;
}

}  // namespace instructflip
