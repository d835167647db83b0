// Where the two tokenizers come from: files users download (bert-base-uncased's
// vocab.txt, flan-t5-base's spiece.model) or "instructions": small vocabularies
// derived deterministically from the instruction texts, for the tiny CPU
// configuration and tests (no download needed).
#pragma once

#include <memory>
#include <string>

#include "model/model_config.h"
#include "model/t5_tokenizer.h"
#include "model/wordpiece_tokenizer.h"

namespace instructflip {

inline constexpr char kInstructionTokenizers[] = "instructions";

struct Tokenizers {
  std::shared_ptr<const WordPieceTokenizer> bert;
  std::shared_ptr<const T5Tokenizer> t5;
};

Tokenizers BuildTokenizers(const TokenizerConfig& config);

// The tokenizer file a TokenizerConfig path names: the path itself, or `name`
// (vocab.txt, spiece.model) inside a Hugging Face model directory; an Error
// naming `field` when the directory has none.
std::string TokenizerFile(const std::string& path, const char* name, const char* field);

// Fills vocabulary sizes given as 0 from the tokenizers; a size smaller than its
// tokenizer's vocabulary is an error naming the field.
void ResolveVocabularySizes(const Tokenizers& tokenizers, ModelConfig* config);

}  // namespace instructflip
