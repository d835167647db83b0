// FLAN-T5's tokenizer (a sentencepiece unigram model, spiece.model), with HF
// T5Tokenizer's id conventions: pad 0, </s> 1, <unk> 2, no bos. Torch-free.
//
// sentencepiece itself sits behind a plugin boundary (sentencepiece_backend.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace instructflip {

class T5Tokenizer {
 public:
  // Throws instructflip::Error naming the path if the file is unreadable or not
  // a sentencepiece model (or one without pad/eos ids).
  static std::unique_ptr<T5Tokenizer> FromFile(const std::string& spiece_model_path);
  static std::unique_ptr<T5Tokenizer> FromSerialized(const std::string& model_proto);
  ~T5Tokenizer();

  // As HF T5Tokenizer(text).input_ids: the pieces' ids, then </s> if add_eos.
  // T5's normalizer (nmt_nfkc) maps "\n" and runs of spaces to one space.
  std::vector<int64_t> Encode(const std::string& text, bool add_eos = true) const;
  // Text of `ids` up to the first </s>, skipping <pad>. Throws on an id outside
  // the sentencepiece vocabulary.
  std::string Decode(const std::vector<int64_t>& ids) const;

  int64_t pad_id() const;
  int64_t eos_id() const;
  int64_t unk_id() const;
  // Pieces of the sentencepiece model. HF's T5Tokenizer appends 100
  // <extra_id_N> sentinels after them (32100 for T5); the model's embedding
  // table may be larger still (32128 for FLAN-T5).
  int64_t vocab_size() const;

 private:
  struct Impl;
  explicit T5Tokenizer(std::unique_ptr<Impl> impl);
  // `where` names the source in error messages.
  static std::unique_ptr<T5Tokenizer> Load(const std::string& model_proto,
                                           const std::string& where);
  std::unique_ptr<Impl> impl_;
};

// Trains a small unigram sentencepiece model on `sentences` with T5's special
// ids (pad=0, eos=1, unk=2, no bos) and normalizer; returns the serialized model
// proto, byte-identical for identical inputs. `vocab_size` is an upper bound
// (hard_vocab_limit=false: a small corpus may yield fewer pieces). For tests
// and the tiny CPU config; real runs load FLAN-T5's spiece.model.
std::string TrainSentencePiece(const std::vector<std::string>& sentences, int vocab_size,
                               uint64_t seed);

}  // namespace instructflip
