// BERT WordPiece tokenizer with bert-base-uncased semantics (HF BertTokenizer,
// do_lower_case=True): the Q-Formers' text side. Torch-free: ids are plain
// int64 vectors. Unicode properties come from utf8proc; the .cc lists where the
// result can still differ from HF.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace instructflip {

class WordPieceTokenizer {
 public:
  // vocab.txt: one token per line, id = line number (0-based). Throws
  // instructflip::Error naming the file if it is unreadable or invalid.
  static std::unique_ptr<WordPieceTokenizer> FromVocabFile(const std::string& vocab_txt);
  // `tokens[i]` gets id i. Requires [PAD], [UNK], [CLS], [SEP] and no duplicates.
  static std::unique_ptr<WordPieceTokenizer> FromVocab(std::vector<std::string> tokens);

  // [CLS] wordpieces [SEP], truncated to `max_length` ids keeping [SEP] last, as
  // BertTokenizer(text, truncation=True, max_length=max_length). max_length >= 2.
  std::vector<int64_t> Encode(const std::string& text, int max_length = 512) const;
  // Wordpieces without specials. Special-token strings inside `text` are not
  // recognised (HF splits them out first); the instruction texts contain none.
  std::vector<std::string> Tokenize(const std::string& text) const;

  // Throws instructflip::Error if `token` is not in the vocabulary (or [DEC]).
  int64_t Id(const std::string& token) const;
  int64_t pad_id() const { return pad_id_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t unk_id() const { return unk_id_; }
  // "[DEC]": BLIP-2 adds it as bos_token after the vocabulary (id = number of
  // vocab lines) when the vocabulary does not already hold it.
  int64_t dec_id() const { return dec_id_; }
  // Including [DEC].
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }

 private:
  explicit WordPieceTokenizer(std::vector<std::string> tokens);
  // Appends the wordpieces of one basic token (HF WordpieceTokenizer.tokenize).
  void AppendWordPieces(const std::string& word, std::vector<std::string>* out) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> ids_;
  int64_t pad_id_ = 0, cls_id_ = 0, sep_id_ = 0, unk_id_ = 0, dec_id_ = 0;
};

// BERT's basic tokenization (clean, split CJK, lower-case, strip accents, split
// on whitespace and punctuation); UTF-8 tokens.
std::vector<std::string> BertBasicTokenize(const std::string& text);

// A WordPiece vocabulary for tiny test configs: [PAD], [UNK], [CLS], [SEP],
// [MASK] first, then (sorted) every basic token of `sentences` and every single
// character of them in plain and "##" form, so Encode never yields [UNK] on them.
std::vector<std::string> BuildWordPieceVocab(const std::vector<std::string>& sentences);

}  // namespace instructflip
