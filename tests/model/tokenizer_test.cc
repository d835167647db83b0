#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "dataio/base/check.h"
#include "tests/common/test_util.h"
#include "model/instructions.h"
#include "model/t5_tokenizer.h"
#include "model/wordpiece_tokenizer.h"

namespace instructflip {
namespace {

using testing::ErrorOf;
using testing::TempDir;

// Trained once: sentencepiece training takes a noticeable fraction of a second.
const std::string& InstructionModel() {
  static const std::string proto = TrainSentencePiece(AllInstructionTexts(), 200, 7);
  return proto;
}

// T5's nmt_nfkc normalizer turns the questions' "\n" into a space.
std::string NewlinesToSpaces(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

TEST(T5Tokenizer, TrainedModelHasT5SpecialIds) {
  const auto tok = T5Tokenizer::FromSerialized(InstructionModel());
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_EQ(tok->unk_id(), 2);
  EXPECT_GT(tok->vocab_size(), 3);
  EXPECT_LE(tok->vocab_size(), 200);
}

TEST(T5Tokenizer, EncodeEndsWithEosAndDecodeRoundTripsInstructions) {
  const auto tok = T5Tokenizer::FromSerialized(InstructionModel());
  for (const std::string& text : AllInstructionTexts()) {
    const std::vector<int64_t> ids = tok->Encode(text);
    ASSERT_GE(ids.size(), 2u) << text;
    EXPECT_EQ(ids.back(), 1) << text;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      EXPECT_GT(ids[i], 2) << text;  // no pad/eos/unk inside: every character was seen
      EXPECT_LT(ids[i], tok->vocab_size()) << text;
    }
    std::vector<int64_t> without_eos = ids;
    without_eos.pop_back();
    EXPECT_EQ(tok->Encode(text, /*add_eos=*/false), without_eos) << text;
    EXPECT_EQ(tok->Decode(ids), NewlinesToSpaces(text));
  }
}

TEST(T5Tokenizer, DecodeSkipsPadAndStopsAtEos) {
  const auto tok = T5Tokenizer::FromSerialized(InstructionModel());
  std::vector<int64_t> ids = tok->Encode("(2) Photo", /*add_eos=*/false);
  std::vector<int64_t> padded = {0};
  padded.insert(padded.end(), ids.begin(), ids.end());
  padded.push_back(0);
  padded.push_back(1);
  const std::vector<int64_t> after = tok->Encode("No GT");
  padded.insert(padded.end(), after.begin(), after.end());
  EXPECT_EQ(tok->Decode(padded), "(2) Photo");
  EXPECT_NE(ErrorOf([&] { tok->Decode({tok->vocab_size()}); }).find("outside"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { tok->Decode({-1}); }).find("outside"), std::string::npos);
}

TEST(T5Tokenizer, TrainingIsDeterministic) {
  const std::vector<std::string> texts = AllInstructionTexts();
  const std::string a = TrainSentencePiece(texts, 150, 3);
  const std::string b = TrainSentencePiece(texts, 150, 3);
  EXPECT_EQ(a, b);
  EXPECT_FALSE(a.empty());
}

TEST(T5Tokenizer, FromFileLoadsAModelAndNamesBadFiles) {
  TempDir dir;
  const std::string good = dir.Write("spiece.model", InstructionModel());
  const auto from_file = T5Tokenizer::FromFile(good);
  const auto from_proto = T5Tokenizer::FromSerialized(InstructionModel());
  EXPECT_EQ(from_file->Encode("(11) 3D mask"), from_proto->Encode("(11) 3D mask"));

  const std::string garbage = dir.Write("garbage.model", "this is not a protobuf \xff\xfe\x01");
  EXPECT_NE(ErrorOf([&] { T5Tokenizer::FromFile(garbage); }).find(garbage), std::string::npos);
  const std::string missing = dir.path + "/missing.model";
  EXPECT_NE(ErrorOf([&] { T5Tokenizer::FromFile(missing); }).find(missing), std::string::npos);
}

TEST(T5Tokenizer, TrainingRejectsBadArguments) {
  EXPECT_NE(ErrorOf([] { TrainSentencePiece({}, 100, 0); }), "");
  EXPECT_NE(ErrorOf([] { TrainSentencePiece({"a b c"}, 3, 0); }), "");
}

// The HF docstring example, plus the words the other tests use.
std::unique_ptr<WordPieceTokenizer> SmallTokenizer() {
  return WordPieceTokenizer::FromVocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff",
                                        "##able", "hello", "world", ",", "!", "cafe", "a", "##a",
                                        "naive", "istanbul", "\xe4\xb8\xad", "\xe6\x96\x87"});
}

using Pieces = std::vector<std::string>;

TEST(WordPiece, GreedyLongestMatchFirst) {
  const auto tok = SmallTokenizer();
  EXPECT_EQ(tok->Tokenize("unaffable"), (Pieces{"un", "##aff", "##able"}));
  // A word that cannot be fully covered becomes one [UNK], not a partial match.
  EXPECT_EQ(tok->Tokenize("unaffablex hello"), (Pieces{"[UNK]", "hello"}));
}

TEST(WordPiece, LowerCasesAndSplitsPunctuation) {
  const auto tok = SmallTokenizer();
  EXPECT_EQ(tok->Tokenize("Hello, World!"), (Pieces{"hello", ",", "world", "!"}));
  EXPECT_EQ(BertBasicTokenize("a-b(c)$d"), (Pieces{"a", "-", "b", "(", "c", ")", "$", "d"}));
  // Unicode punctuation: EM DASH, guillemets, ideographic full stop.
  EXPECT_EQ(BertBasicTokenize("a\xe2\x80\x94"
                              "b \xc2\xab"
                              "c\xc2\xbb d\xe3\x80\x82"),
            (Pieces{"a", "\xe2\x80\x94", "b", "\xc2\xab", "c", "\xc2\xbb", "d", "\xe3\x80\x82"}));
}

TEST(WordPiece, StripsAccents) {
  const auto tok = SmallTokenizer();
  EXPECT_EQ(tok->Tokenize("Caf\xc3\xa9"), (Pieces{"cafe"}));          // precomposed é
  EXPECT_EQ(tok->Tokenize("CAF\xc3\x89"), (Pieces{"cafe"}));          // É lowers, then strips
  EXPECT_EQ(tok->Tokenize("Cafe\xcc\x81"), (Pieces{"cafe"}));         // e + COMBINING ACUTE
  EXPECT_EQ(tok->Tokenize("na\xc3\xafve"), (Pieces{"naive"}));        // ï
  EXPECT_EQ(tok->Tokenize("\xc4\xb0stanbul"), (Pieces{"istanbul"}));  // İ -> i + U+0307 -> i
  // Letters without a canonical decomposition stay (ø, ß, ł); ó and ź strip.
  EXPECT_EQ(BertBasicTokenize("\xc3\x98l Stra\xc3\x9f"
                              "e \xc5\x81\xc3\xb3"
                              "d\xc5\xba"),
            (Pieces{"\xc3\xb8l",
                    "stra\xc3\x9f"
                    "e",
                    "\xc5\x82odz"}));
  // Hangul syllables decompose into jamo (NFD), which are letters and stay.
  EXPECT_EQ(BertBasicTokenize("\xed\x95\x9c"), (Pieces{"\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab"}));
}

// Beyond Latin-1: Greek (final sigma), Cyrillic, Latin Extended-B/Additional,
// full-width forms, singleton decompositions, unassigned/private-use/format
// characters, non-Latin punctuation and marks, Georgian, other spaces, emoji;
// expected pieces from Python's unicodedata (make_wordpiece_golden.py).
TEST(WordPiece, MatchesPythonsUnicodeDatabaseBeyondLatin1) {
  struct Case {
    std::string text;
    Pieces pieces;
  };
  const Case cases[] = {
#include "tests/model/wordpiece_golden.inc"
  };
  for (const Case& c : cases) EXPECT_EQ(BertBasicTokenize(c.text), c.pieces) << c.text;
}

TEST(WordPiece, CleansTextAndSplitsCjk) {
  const auto tok = SmallTokenizer();
  // Tab/newline are whitespace; other controls (\x01, soft hyphen, ZWSP) vanish;
  // NO-BREAK SPACE separates; ill-formed UTF-8 is dropped.
  EXPECT_EQ(BertBasicTokenize(" a\tb\nc\x01"
                              "d e\xc2\xad"
                              "f\xe2\x80\x8bg\xc2\xa0h i\xff\xfej "),
            (Pieces{"a", "b", "cd", "efg", "h", "ij"}));
  EXPECT_EQ(tok->Tokenize("\xe4\xb8\xad\xe6\x96\x87"), (Pieces{"\xe4\xb8\xad", "\xe6\x96\x87"}));
  EXPECT_EQ(BertBasicTokenize("ab\xe4\xb8\xad"
                              "cd"),
            (Pieces{"ab", "\xe4\xb8\xad", "cd"}));
  EXPECT_TRUE(BertBasicTokenize(" \t\r\n").empty());
}

TEST(WordPiece, OverlongWordIsUnknown) {
  const auto tok = SmallTokenizer();
  EXPECT_EQ(tok->Tokenize(std::string(100, 'a')).size(), 100u);  // a ##a ##a ...
  EXPECT_EQ(tok->Tokenize(std::string(101, 'a')), (Pieces{"[UNK]"}));
  // The limit counts code points, not bytes: 60 two-byte letters are fine.
  std::string accented;
  for (int i = 0; i < 60; ++i) accented += "\xc3\xa1";  // á -> a
  EXPECT_EQ(tok->Tokenize(accented).size(), 60u);
}

TEST(WordPiece, EncodeAddsClsSepAndTruncates) {
  const auto tok = SmallTokenizer();
  const int64_t cls = tok->cls_id(), sep = tok->sep_id();
  EXPECT_EQ(cls, 2);
  EXPECT_EQ(sep, 3);
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->unk_id(), 1);
  const int64_t hello = tok->Id("hello"), comma = tok->Id(","), world = tok->Id("world");
  EXPECT_EQ(tok->Encode("Hello, World"), (std::vector<int64_t>{cls, hello, comma, world, sep}));
  EXPECT_EQ(tok->Encode("Hello, World", 4), (std::vector<int64_t>{cls, hello, comma, sep}));
  EXPECT_EQ(tok->Encode("Hello, World", 2), (std::vector<int64_t>{cls, sep}));
  EXPECT_EQ(tok->Encode(""), (std::vector<int64_t>{cls, sep}));
  EXPECT_EQ(tok->Encode("xyz"), (std::vector<int64_t>{cls, tok->unk_id(), sep}));
  EXPECT_NE(ErrorOf([&] { tok->Encode("hello", 1); }), "");
}

TEST(WordPiece, DecTokenIsAppendedAfterTheVocabulary) {
  const auto tok = SmallTokenizer();
  EXPECT_EQ(tok->dec_id(), 19);  // 19 vocabulary lines
  EXPECT_EQ(tok->vocab_size(), 20);
  EXPECT_EQ(tok->Id("[DEC]"), 19);
  const auto with_dec =
      WordPieceTokenizer::FromVocab({"[PAD]", "[DEC]", "[UNK]", "[CLS]", "[SEP]"});
  EXPECT_EQ(with_dec->dec_id(), 1);
  EXPECT_EQ(with_dec->vocab_size(), 5);
  EXPECT_NE(ErrorOf([&] { tok->Id("absent"); }).find("absent"), std::string::npos);
}

TEST(WordPiece, RejectsBadVocabularies) {
  EXPECT_NE(ErrorOf([] {
              WordPieceTokenizer::FromVocab({"[PAD]", "[CLS]", "[SEP]"});
            }).find("[UNK]"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] {
              WordPieceTokenizer::FromVocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"});
            }).find("duplicate"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] { WordPieceTokenizer::FromVocab({}); }), "");
}

TEST(WordPiece, FromVocabFileUsesLineNumbers) {
  TempDir dir;
  const std::string file = dir.Write("vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\n[SEP]\nhello\n");
  const auto tok = WordPieceTokenizer::FromVocabFile(file);
  EXPECT_EQ(tok->Id("[UNK]"), 1);
  EXPECT_EQ(tok->Id("hello"), 4);
  EXPECT_EQ(tok->dec_id(), 5);  // the final newline does not add a line
  const std::string missing = dir.path + "/none.txt";
  EXPECT_NE(ErrorOf([&] { WordPieceTokenizer::FromVocabFile(missing); }).find(missing),
            std::string::npos);
  const std::string bad = dir.Write("bad.txt", "[PAD]\n[CLS]\n");
  EXPECT_NE(ErrorOf([&] { WordPieceTokenizer::FromVocabFile(bad); }).find(bad), std::string::npos);
  // A device (or FIFO) named as a tokenizer file is refused, not read for ever.
  EXPECT_NE(ErrorOf([&] { WordPieceTokenizer::FromVocabFile("/dev/zero"); }).find("/dev/zero: not a regular file"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { T5Tokenizer::FromFile("/dev/zero"); }).find("/dev/zero: not a regular file"),
            std::string::npos);
}

TEST(WordPiece, BuiltVocabularyCoversInstructionTexts) {
  const std::vector<std::string> vocab = BuildWordPieceVocab(AllInstructionTexts());
  ASSERT_GE(vocab.size(), 5u);
  EXPECT_EQ((Pieces(vocab.begin(), vocab.begin() + 5)),
            (Pieces{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}));
  EXPECT_EQ(BuildWordPieceVocab(AllInstructionTexts()), vocab);  // deterministic
  const auto tok = WordPieceTokenizer::FromVocab(vocab);
  for (const std::string& text : AllInstructionTexts()) {
    const std::vector<int64_t> ids = tok->Encode(text);
    for (int64_t id : ids) EXPECT_NE(id, tok->unk_id()) << text;
  }
  // Whole words match as one piece; unseen words fall back to characters.
  EXPECT_EQ(tok->Tokenize("Choose the spoof"), (Pieces{"choose", "the", "spoof"}));
  EXPECT_EQ(tok->Tokenize("hoop"), (Pieces{"h", "##o", "##o", "##p"}));
}

}  // namespace
}  // namespace instructflip
