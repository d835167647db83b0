// BERT WordPiece, following HF BertTokenizer (do_lower_case=True) step by step:
//
//   BasicTokenizer: decode UTF-8 -> drop NUL, U+FFFD and control characters, map
//   whitespace to ' ' -> surround CJK ideographs with spaces -> split on
//   whitespace -> per token: lower-case, strip accents (NFD, drop Mn), split off
//   every punctuation character.
//   WordpieceTokenizer: greedy longest-match-first with "##" continuations; a
//   word over 100 code points, or one that cannot be covered, becomes [UNK].
//
// Python uses the full Unicode database; this file carries only the tables that
// the instruction texts and ordinary Latin text need. Limits (where the result
// can differ from HF):
//   * lower-casing covers U+0000..U+017F (ASCII, Latin-1 Supplement, Latin
//     Extended-A); Greek, Cyrillic, Latin Extended-B/Additional and full-width
//     capitals stay upper-case;
//   * accent stripping (NFD + drop Mn) covers the same range by a base-letter
//     table, plus Hangul syllables (algorithmic NFD); other precomposed letters
//     stay whole;
//   * free-standing Mn marks are dropped in the combining blocks and the CJK /
//     kana marks only;
//   * "control" is Cc, Cf and Co; unassigned code points (Cn, which BERT drops)
//     are kept;
//   * punctuation is ASCII plus Unicode P* in the Latin-1, General and
//     Supplemental Punctuation, CJK punctuation and full-width blocks.
// Ill-formed UTF-8 decodes to U+FFFD, which the cleaning step drops (Python's
// errors="replace" followed by BERT's _clean_text).
#include "model/wordpiece_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <utility>

#include "dataio/base/check.h"

namespace instructflip {
namespace {

constexpr char32_t kReplacementChar = 0xFFFD;
constexpr size_t kMaxWordChars = 100;  // HF max_input_chars_per_word

struct Range {
  char32_t lo, hi;
};

template <size_t N>
bool InRanges(char32_t cp, const Range (&ranges)[N]) {
  for (const Range& r : ranges)
    if (cp >= r.lo && cp <= r.hi) return true;
  return false;
}

std::u32string DecodeUtf8(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    size_t len = 0;
    char32_t cp = 0, min_cp = 0;
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2, cp = b & 0x1F, min_cp = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3, cp = b & 0x0F, min_cp = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4, cp = b & 0x07, min_cp = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (s[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are ill-formed too.
    ok = ok && cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    out.push_back(ok ? cp : kReplacementChar);
    i += ok ? len : 1;
  }
  return out;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string ToUtf8(const std::u32string& cps) {
  std::string out;
  for (char32_t cp : cps) AppendUtf8(cp, &out);
  return out;
}

// BERT _is_whitespace: space, \t, \n, \r and category Zs.
bool IsWhitespace(char32_t cp) {
  static constexpr Range kZs[] = {{0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680},
                                  {0x2000, 0x200A}, {0x202F, 0x202F}, {0x205F, 0x205F},
                                  {0x3000, 0x3000}};
  return cp == '\t' || cp == '\n' || cp == '\r' || InRanges(cp, kZs);
}

// BERT _is_control: category C* except \t, \n, \r (which are whitespace).
bool IsControl(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  static constexpr Range kCcCfCo[] = {{0x0, 0x1F},        {0x7F, 0x9F},       {0xAD, 0xAD},
                                      {0x600, 0x605},     {0x61C, 0x61C},     {0x6DD, 0x6DD},
                                      {0x70F, 0x70F},     {0x890, 0x891},     {0x8E2, 0x8E2},
                                      {0x180E, 0x180E},   {0x200B, 0x200F},   {0x202A, 0x202E},
                                      {0x2060, 0x2064},   {0x2066, 0x206F},   {0xE000, 0xF8FF},
                                      {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0xE0001, 0xE0001},
                                      {0xE0020, 0xE007F}, {0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD}};
  return InRanges(cp, kCcCfCo);
}

// BERT _is_punctuation: all non-alphanumeric ASCII, plus Unicode P*.
bool IsPunctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126))
    return true;
  static constexpr Range kP[] = {
      {0xA1, 0xA1},     {0xA7, 0xA7},     {0xAB, 0xAB},     {0xB6, 0xB7},     {0xBB, 0xBB},
      {0xBF, 0xBF},     {0x2010, 0x2027}, {0x2030, 0x2043}, {0x2045, 0x2051}, {0x2053, 0x205E},
      {0x2E00, 0x2E2E}, {0x2E30, 0x2E4F}, {0x2E52, 0x2E5D}, {0x3001, 0x3003}, {0x3008, 0x3011},
      {0x3014, 0x301F}, {0x3030, 0x3030}, {0x303D, 0x303D}, {0xFE30, 0xFE52}, {0xFE54, 0xFE61},
      {0xFE63, 0xFE63}, {0xFE68, 0xFE68}, {0xFE6A, 0xFE6B}, {0xFF01, 0xFF03}, {0xFF05, 0xFF0A},
      {0xFF0C, 0xFF0F}, {0xFF1A, 0xFF1B}, {0xFF1F, 0xFF20}, {0xFF3B, 0xFF3D}, {0xFF3F, 0xFF3F},
      {0xFF5B, 0xFF5B}, {0xFF5D, 0xFF5D}, {0xFF5F, 0xFF65}};
  return InRanges(cp, kP);
}

// BERT _is_chinese_char: the CJK Unified Ideographs blocks (not Hiragana,
// Katakana or Hangul, which are split like any other letters).
bool IsCjk(char32_t cp) {
  static constexpr Range kCjk[] = {{0x4E00, 0x9FFF},   {0x3400, 0x4DBF},   {0x20000, 0x2A6DF},
                                   {0x2A700, 0x2B73F}, {0x2B740, 0x2B81F}, {0x2B820, 0x2CEAF},
                                   {0xF900, 0xFAFF},   {0x2F800, 0x2FA1F}};
  return InRanges(cp, kCjk);
}

// Nonspacing marks (Mn) of the combining blocks, the CJK tone marks and the kana
// voicing marks; enclosing marks (Me) are kept, as in BERT.
bool IsCombiningMark(char32_t cp) {
  static constexpr Range kMn[] = {{0x300, 0x36F},   {0x483, 0x487},   {0x1AB0, 0x1ABD},
                                  {0x1ABF, 0x1ACE}, {0x1DC0, 0x1DFF}, {0x20D0, 0x20DC},
                                  {0x20E1, 0x20E1}, {0x20E5, 0x20F0}, {0x302A, 0x302D},
                                  {0x3099, 0x309A}, {0xFE20, 0xFE2F}};
  return InRanges(cp, kMn);
}

// Python str.lower() on U+0000..U+017F; other code points unchanged.
void AppendLower(char32_t cp, std::u32string* out) {
  const bool even = cp % 2 == 0;
  if (cp >= 'A' && cp <= 'Z') {
    cp += 0x20;
  } else if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) {
    cp += 0x20;
  } else if (cp == 0x130) {
    out->push_back('i');  // İ lowers to "i" + COMBINING DOT ABOVE
    cp = 0x307;
  } else if (cp == 0x178) {
    cp = 0xFF;
  } else if (((cp >= 0x100 && cp <= 0x12F) || (cp >= 0x132 && cp <= 0x137) ||
              (cp >= 0x14A && cp <= 0x177)) &&
             even) {
    cp += 1;
  } else if (((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) && !even) {
    cp += 1;
  }
  out->push_back(cp);
}

// NFD base letter of U+00C0..U+017F ('.' = no canonical decomposition), from
// Python's unicodedata.normalize("NFD", c) with the Mn marks removed.
constexpr char kLatinBase[] =
    "AAAAAA.CEEEEIIII.NOOOOO..UUUUY.."   // U+00C0
    "aaaaaa.ceeeeiiii.nooooo..uuuuy.y"   // U+00E0
    "AaAaAaCcCcCcCcDd..EeEeEeEeEeGgGg"   // U+0100
    "GgGgHh..IiIiIiIiI...JjKk.LlLlLl."   // U+0120
    "...NnNnNn...OoOoOo..RrRrRrSsSsSs"   // U+0140
    "SsTtTt..UuUuUuUuUuUuWwYyYZzZzZz.";  // U+0160
static_assert(sizeof(kLatinBase) == 0x180 - 0xC0 + 1, "one entry per code point");

// BERT _run_strip_accents: NFD, then drop Mn (within the limits above).
void AppendStripped(char32_t cp, std::u32string* out) {
  if (cp >= 0xC0 && cp < 0x180 && kLatinBase[cp - 0xC0] != '.') {
    out->push_back(static_cast<char32_t>(kLatinBase[cp - 0xC0]));
  } else if (cp >= 0xAC00 && cp <= 0xD7A3) {
    // Hangul syllable -> leading consonant, vowel, optional trailing consonant
    // (Unicode ch. 3.12); jamo are letters, so they stay.
    const char32_t s = cp - 0xAC00;
    out->push_back(0x1100 + s / (21 * 28));
    out->push_back(0x1161 + (s % (21 * 28)) / 28);
    if (s % 28 != 0) out->push_back(0x11A7 + s % 28);
  } else if (!IsCombiningMark(cp)) {
    out->push_back(cp);
  }
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
  std::u32string lowered, stripped, run;
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
    lowered.clear();
    for (size_t k = i; k < end; ++k) AppendLower(cleaned[k], &lowered);
    stripped.clear();
    for (char32_t cp : lowered) AppendStripped(cp, &stripped);
    for (char32_t cp : stripped) {
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
  std::ifstream in(vocab_txt, std::ios::binary);
  IF_REQUIRE(in, "cannot open WordPiece vocabulary '", vocab_txt, "'");
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  IF_REQUIRE(!in.bad(), "cannot read WordPiece vocabulary '", vocab_txt, "'");
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
