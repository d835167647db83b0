// BERT WordPiece, following HF BertTokenizer (do_lower_case=True) step by step:
//
//   BasicTokenizer: decode UTF-8 -> drop NUL, U+FFFD and control characters, map
//   whitespace to ' ' -> surround CJK ideographs with spaces -> split on
//   whitespace -> per token: lower-case, strip accents (NFD, drop Mn), split off
//   every punctuation character.
//   WordpieceTokenizer: greedy longest-match-first with "##" continuations; a
//   word over 100 code points, or one that cannot be covered, becomes [UNK].
//
// The Unicode properties come from utf8proc (Debian libutf8proc-dev), as Python's
// come from unicodedata: general categories (whitespace Zs, control C*,
// punctuation P*, marks Mn), lower case and canonical decomposition (NFD). Where
// the result can still differ from HF: lower-casing uses the simple case mapping
// plus Python's two context rules that matter here (U+0130 and a word-final
// capital sigma), and the two libraries may carry different Unicode versions
// (utf8proc_unicode_version() against Python's unicodedata.unidata_version)
// for code points assigned in between.
// Ill-formed UTF-8 decodes to U+FFFD, one per bad byte, which the cleaning step
// drops (Python's errors="replace" followed by BERT's _clean_text).
#include "model/wordpiece_tokenizer.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include <utf8proc.h>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip {
namespace {

constexpr char32_t kReplacementChar = 0xFFFD;
constexpr size_t kMaxWordChars = 100;  // HF max_input_chars_per_word

std::u32string DecodeUtf8(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  for (size_t i = 0; i < text.size();) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t length = utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    const bool ok = length > 0;
    out.push_back(ok ? static_cast<char32_t>(cp) : kReplacementChar);
    i += ok ? static_cast<size_t>(length) : 1;
  }
  return out;
}

std::string ToUtf8(const std::u32string& cps) {
  std::string out;
  utf8proc_uint8_t buffer[4];
  for (char32_t cp : cps) {
    const utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buffer);
    out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
  }
  return out;
}

utf8proc_category_t Category(char32_t cp) { return utf8proc_category(static_cast<utf8proc_int32_t>(cp)); }

// BERT _is_whitespace: space, \t, \n, \r and category Zs.
bool IsWhitespace(char32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || Category(cp) == UTF8PROC_CATEGORY_ZS;
}

// BERT _is_control: category C* (Cc, Cf, Cs, Co, Cn) except \t, \n, \r.
bool IsControl(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  switch (Category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

// BERT _is_punctuation: all non-alphanumeric ASCII, plus category P*.
bool IsPunctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
    return true;
  const utf8proc_category_t c = Category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

// BERT _is_chinese_char: the CJK Unified Ideographs blocks (not Hiragana,
// Katakana or Hangul, which are split like any other letters). BERT's own
// block list, not a Unicode property.
bool IsCjk(char32_t cp) {
  struct Range {
    char32_t lo, hi;
  };
  static constexpr Range kCjk[] = {{0x4E00, 0x9FFF},   {0x3400, 0x4DBF},   {0x20000, 0x2A6DF},
                                   {0x2A700, 0x2B73F}, {0x2B740, 0x2B81F}, {0x2B820, 0x2CEAF},
                                   {0xF900, 0xFAFF},   {0x2F800, 0x2FA1F}};
  return std::any_of(std::begin(kCjk), std::end(kCjk), [&](const Range& r) { return cp >= r.lo && cp <= r.hi; });
}

bool IsCased(char32_t cp) {
  const utf8proc_category_t c = Category(cp);
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

// Python str.lower() of one word: the simple lower-case mapping, plus U+0130
// (lowers to "i" + U+0307) and the final sigma (U+03A3 after a cased letter and
// not before one lowers to U+03C2), Python's two unconditional/contextual rules.
std::u32string Lower(const std::u32string& word) {
  std::u32string out;
  for (size_t i = 0; i < word.size(); ++i) {
    const char32_t cp = word[i];
    if (cp == 0x130) {
      out += U"i\u0307";
    } else if (cp == 0x3A3 && i > 0 && IsCased(word[i - 1]) && (i + 1 == word.size() || !IsCased(word[i + 1]))) {
      out.push_back(0x3C2);
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  return out;
}

// BERT _run_strip_accents: unicodedata.normalize("NFD", word), then drop Mn.
std::u32string StripAccents(const std::u32string& word) {
  const std::string utf8 = ToUtf8(word);
  utf8proc_uint8_t* nfd = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                                          static_cast<utf8proc_ssize_t>(utf8.size()), &nfd,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
  IF_REQUIRE(n >= 0, "WordPiece: NFD failed: ", utf8proc_errmsg(n));  // the input came from DecodeUtf8: valid
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(nfd, &std::free);
  std::u32string out;
  for (char32_t cp : DecodeUtf8(std::string(reinterpret_cast<const char*>(nfd), static_cast<size_t>(n))))
    if (Category(cp) != UTF8PROC_CATEGORY_MN) out.push_back(cp);
  return out;
}

// Python str.split() separators left after cleaning: ' ' and the line/paragraph
// separators, which BERT neither drops nor maps to ' ' but str.split honours.
bool IsSplitSpace(char32_t cp) { return cp == ' ' || cp == 0x2028 || cp == 0x2029; }

// Byte offsets of the code point starts of valid UTF-8 `s`, plus s.size().
std::vector<size_t> CharBoundaries(const std::string& s) {
  std::vector<size_t> bounds;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) bounds.push_back(i);
  bounds.push_back(s.size());
  return bounds;
}

const char* const kRequiredSpecials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]"};
constexpr char kDecToken[] = "[DEC]";

void ValidateVocab(const std::vector<std::string>& tokens, const std::string& where) {
  IF_REQUIRE(!tokens.empty(), where, ": empty WordPiece vocabulary");
  std::unordered_map<std::string, size_t> first_line;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto [it, inserted] = first_line.emplace(tokens[i], i);
    IF_REQUIRE(inserted, where, ": duplicate token '", tokens[i], "' at lines ", it->second + 1,
               " and ", i + 1);
  }
  for (const char* special : kRequiredSpecials)
    IF_REQUIRE(first_line.count(special), where, ": WordPiece vocabulary lacks ", special);
}

}  // namespace

std::vector<std::string> BertBasicTokenize(const std::string& text) {
  std::u32string cleaned;
  for (char32_t cp : DecodeUtf8(text)) {
    if (cp == kReplacementChar || IsControl(cp)) continue;  // NUL is Cc
    if (IsWhitespace(cp)) {
      cleaned.push_back(' ');
    } else if (IsCjk(cp)) {
      cleaned += U' ';
      cleaned.push_back(cp);
      cleaned += U' ';
    } else {
      cleaned.push_back(cp);
    }
  }

  std::vector<std::string> tokens;
  std::u32string run;
  auto flush_run = [&]() {
    if (!run.empty()) tokens.push_back(ToUtf8(run));
    run.clear();
  };
  size_t i = 0;
  while (i < cleaned.size()) {
    if (IsSplitSpace(cleaned[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < cleaned.size() && !IsSplitSpace(cleaned[end])) ++end;
    // Lower-case the whole word before stripping, as Python does (İ -> i + U+0307).
    for (char32_t cp : StripAccents(Lower(cleaned.substr(i, end - i)))) {
      if (IsPunctuation(cp)) {
        flush_run();
        run.push_back(cp);
        flush_run();
      } else {
        run.push_back(cp);
      }
    }
    flush_run();
    i = end;
  }
  return tokens;
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> tokens)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int64_t>(i));
  if (!ids_.count(kDecToken)) {
    ids_.emplace(kDecToken, static_cast<int64_t>(tokens_.size()));
    tokens_.push_back(kDecToken);
  }
  pad_id_ = ids_.at("[PAD]");
  unk_id_ = ids_.at("[UNK]");
  cls_id_ = ids_.at("[CLS]");
  sep_id_ = ids_.at("[SEP]");
  dec_id_ = ids_.at(kDecToken);
}

std::unique_ptr<WordPieceTokenizer> WordPieceTokenizer::FromVocab(std::vector<std::string> tokens) {
  ValidateVocab(tokens, "WordPiece vocabulary");
  return std::unique_ptr<WordPieceTokenizer>(new WordPieceTokenizer(std::move(tokens)));
}

std::unique_ptr<WordPieceTokenizer> WordPieceTokenizer::FromVocabFile(
    const std::string& vocab_txt) {
  IF_REQUIRE(PathExists(vocab_txt), "cannot open WordPiece vocabulary '", vocab_txt, "': it does not exist");
  // ReadFile refuses a directory, device or FIFO (whose read would never end).
  const std::string content = ReadFile(vocab_txt);
  // Lines as Python's text-mode readlines + rstrip("\n"): a final newline does
  // not start another token, and "\r\n" endings count as "\n".
  std::vector<std::string> tokens;
  std::istringstream lines(content);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tokens.push_back(std::move(line));
  }
  ValidateVocab(tokens, vocab_txt);
  return std::unique_ptr<WordPieceTokenizer>(new WordPieceTokenizer(std::move(tokens)));
}

void WordPieceTokenizer::AppendWordPieces(const std::string& word,
                                          std::vector<std::string>* out) const {
  const std::vector<size_t> bounds = CharBoundaries(word);
  const size_t num_chars = bounds.size() - 1;
  if (num_chars > kMaxWordChars) {
    out->push_back(tokens_[unk_id_]);
    return;
  }
  const size_t first_piece = out->size();
  size_t start = 0;
  while (start < num_chars) {
    size_t end = num_chars;
    for (; end > start; --end) {
      std::string piece = word.substr(bounds[start], bounds[end] - bounds[start]);
      if (start > 0) piece.insert(0, "##");
      if (ids_.count(piece)) {
        out->push_back(std::move(piece));
        break;
      }
    }
    if (end == start) {  // no prefix of the rest matches: the whole word is unknown
      out->resize(first_piece);
      out->push_back(tokens_[unk_id_]);
      return;
    }
    start = end;
  }
}

std::vector<std::string> WordPieceTokenizer::Tokenize(const std::string& text) const {
  std::vector<std::string> pieces;
  for (const std::string& word : BertBasicTokenize(text)) AppendWordPieces(word, &pieces);
  return pieces;
}

std::vector<int64_t> WordPieceTokenizer::Encode(const std::string& text, int max_length) const {
  IF_REQUIRE(max_length >= 2, "WordPiece Encode: max_length ", max_length,
             " leaves no room for [CLS] and [SEP]");
  const std::vector<std::string> pieces = Tokenize(text);
  const size_t body = std::min(pieces.size(), static_cast<size_t>(max_length) - 2);
  std::vector<int64_t> ids;
  ids.reserve(body + 2);
  ids.push_back(cls_id_);
  for (size_t i = 0; i < body; ++i) ids.push_back(ids_.at(pieces[i]));
  ids.push_back(sep_id_);
  return ids;
}

int64_t WordPieceTokenizer::Id(const std::string& token) const {
  const auto it = ids_.find(token);
  IF_REQUIRE(it != ids_.end(), "token '", token, "' is not in the WordPiece vocabulary");
  return it->second;
}

std::vector<std::string> BuildWordPieceVocab(const std::vector<std::string>& sentences) {
  std::set<std::string> entries;
  for (const std::string& sentence : sentences) {
    for (const std::string& word : BertBasicTokenize(sentence)) {
      entries.insert(word);
      const std::vector<size_t> bounds = CharBoundaries(word);
      for (size_t i = 0; i + 1 < bounds.size(); ++i) {
        const std::string ch = word.substr(bounds[i], bounds[i + 1] - bounds[i]);
        entries.insert(ch);
        entries.insert("##" + ch);
      }
    }
  }
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  vocab.insert(vocab.end(), entries.begin(), entries.end());
  return vocab;
}

}  // namespace instructflip
