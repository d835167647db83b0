// The sentencepiece plugin (see sentencepiece_backend.h for why it is one).
// The only unit that includes sentencepiece's headers.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "model/sentencepiece_backend.h"

namespace {

// Feeds in-memory sentences to the trainer.
class VectorSentenceIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentenceIterator(const std::vector<std::string>& sentences) : sentences_(sentences) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& sentences_;
  size_t index_ = 0;
};

std::string Message(const sentencepiece::util::Status& status) { return status.ok() ? "" : status.ToString(); }

class Backend final : public instructflip::SentencePieceBackend {
 public:
  std::string Load(const std::string& model_proto) override {
    return Message(processor_.LoadFromSerializedProto(model_proto));
  }
  std::string Encode(const std::string& text, std::vector<int>* ids) const override {
    return Message(processor_.Encode(text, ids));
  }
  std::string Decode(const std::vector<int>& ids, std::string* text) const override {
    return Message(processor_.Decode(ids, text));
  }
  int pad_id() const override { return processor_.pad_id(); }
  int eos_id() const override { return processor_.eos_id(); }
  int unk_id() const override { return processor_.unk_id(); }
  int piece_size() const override { return processor_.GetPieceSize(); }
  std::string Train(const std::string& args, const std::vector<std::string>& sentences, unsigned int seed,
                    std::string* model_proto) override {
    sentencepiece::SetRandomGeneratorSeed(seed);
    VectorSentenceIterator iterator(sentences);
    return Message(sentencepiece::SentencePieceTrainer::Train(args, &iterator, model_proto));
  }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

extern "C" __attribute__((visibility("default"))) instructflip::SentencePieceBackend*
instructflip_create_sentencepiece_backend() {
  return new Backend();
}
