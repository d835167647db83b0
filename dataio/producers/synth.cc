// Procedural face anti-spoofing data (`instructflip synth`).
//
// Design note.
// * What: every sample is a painted scene: a backdrop (indoor wall / outdoor sky
//   and foliage), a person built from analytic shapes in face-local coordinates
//   (ellipsoid-shaded face, hair, ears, neck, torso, eyes, brows, nose bump,
//   mouth) and, for spoofs, an attack medium: a print (halftone, banding, paper
//   texture, reduced range, visible paper edge), a replay screen (moire,
//   sub-pixel grid, glare, dark bezel, self-luminous) or a mask (flat low-detail
//   layer with a hard, seamed boundary). A per-domain camera (white balance,
//   exposure, contrast, blur, sensor noise, JPEG quality) develops the scene.
// * Why analytic shapes: cheap (pure per-pixel loops, ~ms per 224 px frame),
//   deterministic, and every cue the model should learn is an explicit,
//   amplitude-controlled term, so tests can reason about them.
// * Determinism: every random choice is KeyedRng/SplitMix64 over a key built
//   from (seed, stream tag, domain, subject/video/frame), so a sample is a pure
//   function of (options, domain, index): thread count and render order cannot
//   change a byte. Per-pixel noise is a hash of the pixel index (no sequential
//   state), and no libm call sits on a path whose result depends on scheduling.
// * Balance: labels and spoof types are dealt from shuffled decks (4 live + 6
//   spoof per 10 videos, the 10 spoof types per 10 spoof videos) and test
//   subjects from a deck of 5, so even small domains have both labels, all
//   types and an ~80/20 subject-disjoint split.
// * Domain shift: each style axis (colour temperature, tint, exposure,
//   contrast, camera quality, light direction) spreads the domains over evenly spaced
//   slots, shifted per axis so that every domain sits at an extreme slot of some
//   axis: whichever domain is held out lies outside the others' range on at
//   least one style statistic.
// * Geometry constants are fractions of the image side or pixels at 224 px
//   (scaled by size/224), so a sample looks the same at every size.
#include "dataio/producers/synth.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/base/ordered_parallel.h"
#include "dataio/base/rng.h"
#include "dataio/store_writer.h"

namespace instructflip {
namespace {

constexpr int64_t kIdStride = 1000000;  // video/subject id = domain * kIdStride + index
constexpr int64_t kVideosPerSubject = 3;
constexpr int kLabelDeck = 10;          // per 10 consecutive videos ...
constexpr int kLiveInDeck = 4;          // ... 4 live (40 %) and 6 spoof
constexpr int kSpoofTypes = 10;
constexpr int kSplitDeck = 5;           // per 5 consecutive subjects, 1 is a test subject
constexpr float kReferenceSize = 224.f;
constexpr float kPi = 3.14159265358979f;

// Stream tags keep the key spaces of different decisions apart.
enum Tag : uint64_t {
  kTagDomain = 1,
  kTagDomainShift,
  kTagLabelDeck,
  kTagSpoofDeck,
  kTagSplitDeck,
  kTagSubject,
  kTagVideo,
  kTagFrame,
};

using Rgb = std::array<float, 3>;

// ---------------------------------------------------------------------------
// Small numeric helpers.

float Clamp01(float v) { return std::min(1.f, std::max(0.f, v)); }
float Lerp(float a, float b, float t) { return a + (b - a) * t; }
float SmoothStep(float e0, float e1, float x) {
  const float t = Clamp01((x - e0) / (e1 - e0));
  return t * t * (3.f - 2.f * t);
}
Rgb Scale(const Rgb& c, float s) { return {c[0] * s, c[1] * s, c[2] * s}; }
Rgb Mul(const Rgb& a, const Rgb& b) { return {a[0] * b[0], a[1] * b[1], a[2] * b[2]}; }
// Anti-aliased coverage of a shape from a signed distance in pixels (< 0 inside).
float Coverage(float distance_px) { return Clamp01(0.5f - distance_px); }

// A thin wrapper so the generators read as "uniform in [lo, hi)". Draws go into
// named locals or braced lists, never two into one call's arguments: argument
// evaluation order is unspecified, and the data must not depend on the compiler.
class Random {
 public:
  explicit Random(uint64_t key) : rng_(key) {}
  float Uniform() { return static_cast<float>(rng_.Uniform()); }
  float Uniform(float lo, float hi) { return lo + (hi - lo) * Uniform(); }
  int Below(int n) { return static_cast<int>(rng_.Below(static_cast<uint64_t>(n))); }
  bool Chance(float p) { return Uniform() < p; }
  uint64_t Key() { return rng_.NextU64(); }

 private:
  KeyedRng rng_;
};

// Per-pixel randomness must be stateless (a hash of the pixel index) so any
// pixel can be drawn in any order.
float HashUniform(uint64_t key, uint64_t i) {
  return static_cast<float>(SplitMix64(key ^ (i * 0xD1B54A32D192ED03ull)) >> 40) *
         (1.f / 16777216.f);
}
// Approximately N(0, 1): Irwin-Hall sum of four 16-bit uniforms from one hash;
// tails are cut at +-3.5 sigma, which sensor noise never needs.
float HashGauss(uint64_t key, uint64_t i) {
  const uint64_t h = SplitMix64(key ^ (i * 0xD1B54A32D192ED03ull));
  const float sum = static_cast<float>(h & 0xffff) + static_cast<float>((h >> 16) & 0xffff) +
                    static_cast<float>((h >> 32) & 0xffff) + static_cast<float>(h >> 48);
  return (sum * (1.f / 65536.f) - 2.f) * 1.7320508f;
}
uint64_t PixelKey(int x, int y) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(x)) << 32) | static_cast<uint32_t>(y);
}

// Smooth lattice noise in [0, 1] for textures (paper, foliage, walls). Scans
// visit neighbouring points in turn, so the cell's four lattice values are
// cached: about one hash per cell instead of four per call.
class ValueNoise {
 public:
  // `cell` is the lattice spacing in the caller's units (pixels).
  ValueNoise(uint64_t key, float cell) : key_(key), inv_cell_(1.f / cell) {}
  float operator()(float x, float y) {
    x *= inv_cell_;
    y *= inv_cell_;
    const float fx = std::floor(x), fy = std::floor(y);
    const int ix = static_cast<int>(fx), iy = static_cast<int>(fy);
    if (ix != ix_ || iy != iy_ || !valid_) {
      ix_ = ix;
      iy_ = iy;
      valid_ = true;
      v00_ = HashUniform(key_, PixelKey(ix, iy));
      v10_ = HashUniform(key_, PixelKey(ix + 1, iy));
      v01_ = HashUniform(key_, PixelKey(ix, iy + 1));
      v11_ = HashUniform(key_, PixelKey(ix + 1, iy + 1));
    }
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3.f - 2.f * tx);
    ty = ty * ty * (3.f - 2.f * ty);
    return Lerp(Lerp(v00_, v10_, tx), Lerp(v01_, v11_, tx), ty);
  }

 private:
  uint64_t key_;
  float inv_cell_;
  int ix_ = 0, iy_ = 0;
  bool valid_ = false;
  float v00_ = 0.f, v10_ = 0.f, v01_ = 0.f, v11_ = 0.f;
};

// cos(2 pi t) from a table: gratings (halftone, moire, sub-pixels, hair strands)
// need millions of evaluations per image and only ~1e-3 accuracy.
constexpr int kCosTableSize = 4096;
const std::array<float, kCosTableSize>& CosTable() {
  static const std::array<float, kCosTableSize> table = [] {
    std::array<float, kCosTableSize> t{};
    for (int i = 0; i < kCosTableSize; ++i) t[i] = static_cast<float>(std::cos(6.283185307179586 * i / kCosTableSize));
    return t;
  }();
  return table;
}
float CosTurns(float t) {
  const float frac = t - std::floor(t);
  return CosTable()[static_cast<int>(frac * kCosTableSize) & (kCosTableSize - 1)];
}

// ---------------------------------------------------------------------------
// Canvas: float RGB, display-referred, nominally 0..1 (the camera clips).

struct Canvas {
  Canvas(int w, int h) : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3, 0.f) {}
  float* At(int x, int y) { return &rgb[(static_cast<size_t>(y) * width + x) * 3]; }
  // Bilinear sample at continuous pixel coordinates (pixel centres at +0.5), edge-clamped.
  Rgb Sample(float x, float y) const {
    const float fx = std::min(std::max(x - 0.5f, 0.f), width - 1.f);
    const float fy = std::min(std::max(y - 0.5f, 0.f), height - 1.f);
    const int x0 = static_cast<int>(fx), y0 = static_cast<int>(fy);
    const int x1 = std::min(x0 + 1, width - 1), y1 = std::min(y0 + 1, height - 1);
    const float tx = fx - x0, ty = fy - y0;
    const float* p00 = &rgb[(static_cast<size_t>(y0) * width + x0) * 3];
    const float* p10 = &rgb[(static_cast<size_t>(y0) * width + x1) * 3];
    const float* p01 = &rgb[(static_cast<size_t>(y1) * width + x0) * 3];
    const float* p11 = &rgb[(static_cast<size_t>(y1) * width + x1) * 3];
    Rgb out;
    for (int k = 0; k < 3; ++k)
      out[k] = Lerp(Lerp(p00[k], p10[k], tx), Lerp(p01[k], p11[k], tx), ty);
    return out;
  }

  int width;
  int height;
  std::vector<float> rgb;
};

void Blend(float* dst, const Rgb& src, float alpha) {
  for (int k = 0; k < 3; ++k) dst[k] += (src[k] - dst[k]) * alpha;
}

// Separable box blur with a fractional radius (the outermost taps get the
// fractional weight), so blur strength varies continuously with the style.
// Running sums make it O(1) per pixel whatever the radius; edges are clamped.
void Blur(Canvas& canvas, float radius) {
  if (radius < 0.05f) return;
  const int r = static_cast<int>(radius);
  const float edge = radius - r;
  const float norm = 1.f / (2.f * r + 1.f + 2.f * edge);
  const int w = canvas.width, h = canvas.height;
  const int pad = r + 1;
  // Horizontal: each row is copied into a buffer padded by edge replication.
  std::vector<float> line(static_cast<size_t>(w + 2 * pad) * 3);
  for (int y = 0; y < h; ++y) {
    float* row = canvas.At(0, y);
    for (int j = -pad; j < w + pad; ++j)
      for (int k = 0; k < 3; ++k) line[(j + pad) * 3 + k] = row[std::min(std::max(j, 0), w - 1) * 3 + k];
    const float* centre = &line[pad * 3];  // centre[j * 3 + k] is pixel j, valid for j in [-pad, w + pad)
    for (int k = 0; k < 3; ++k) {
      float sum = 0.f;
      for (int t = -r; t <= r; ++t) sum += centre[t * 3 + k];
      for (int x = 0; x < w; ++x) {
        row[x * 3 + k] = (sum + edge * (centre[(x - r - 1) * 3 + k] + centre[(x + r + 1) * 3 + k])) * norm;
        sum += centre[(x + r + 1) * 3 + k] - centre[(x - r) * 3 + k];
      }
    }
  }
  // Vertical: whole rows at a time, which keeps the scan cache-friendly.
  const std::vector<float> source = canvas.rgb;
  const size_t row_floats = static_cast<size_t>(w) * 3;
  auto row = [&](int y) { return &source[static_cast<size_t>(std::min(std::max(y, 0), h - 1)) * row_floats]; };
  std::vector<float> sum(row_floats, 0.f);
  for (int t = -r; t <= r; ++t) {
    const float* p = row(t);
    for (size_t i = 0; i < row_floats; ++i) sum[i] += p[i];
  }
  for (int y = 0; y < h; ++y) {
    const float *lo = row(y - r - 1), *hi = row(y + r + 1), *leaving = row(y - r);
    float* out = canvas.At(0, y);
    for (size_t i = 0; i < row_floats; ++i) {
      out[i] = (sum[i] + edge * (lo[i] + hi[i])) * norm;
      sum[i] += hi[i] - leaving[i];
    }
  }
}

// ---------------------------------------------------------------------------
// Domain style.

struct DomainStyle {
  Rgb gain;                    // white balance: colour temperature and tint
  float exposure;              // global illumination level
  float light_azimuth;         // dominant key-light direction, radians (0 = frontal)
  float contrast;
  float quality;               // 0 worst .. 1 best camera: blur, noise, JPEG quality
  int camera_quality;          // the attribute code of `quality`
  int jpeg_quality;
  float outdoor_share;
  int favourite_illumination;  // the non-normal illumination this domain over-represents
};

DomainStyle MakeDomainStyle(const SynthOptions& options, int domain) {
  const int n = options.domains;
  Random rng(HashKeys({options.seed, kTagDomain, static_cast<uint64_t>(domain)}));
  const int shift = static_cast<int>(HashKeys({options.seed, kTagDomainShift}) % n);
  // Axis k puts domain d on slot (d + k * step + shift) mod n. With step 1 (n <= 7)
  // or 2 (n = 8) and six axes, every domain lands on slot 0 or n-1 of some axis.
  // Temperature and tint (axes 0 and 2), the most robustly measurable styles,
  // alone give every domain an extreme slot when n <= 4.
  const int step = n <= 7 ? 1 : 2;
  auto axis = [&](int k) {
    if (n == 1) return 0.5f;
    const int slot = (domain + k * step + shift) % n;
    // Jitter well below half a slot keeps the slot order (and so the extremes).
    return Clamp01((slot + rng.Uniform(-0.1f, 0.1f)) / (n - 1));
  };
  const float temperature = axis(0), exposure = axis(1), tint = axis(2), contrast = axis(3),
              quality = axis(4), azimuth = axis(5);
  DomainStyle style;
  // Temperature trades red against blue with a constant R*B gain product, so it
  // leaves green relative to sqrt(R*B) alone; that ratio is the tint, the
  // green-magenta error of auto white balance under fluorescent or LED light.
  const float red_gain = std::exp(0.4f * (temperature - 0.5f));
  style.gain = {red_gain, 0.86f + 0.28f * tint, 1.f / red_gain};
  style.exposure = 0.78f + 0.40f * exposure;
  style.contrast = 0.80f + 0.40f * contrast;
  style.light_azimuth = -1.f + 2.f * azimuth;
  style.quality = quality;
  style.camera_quality = static_cast<int>(std::lround(quality * 2.f));
  style.jpeg_quality = std::min(options.jpeg_quality, 60 + static_cast<int>(std::lround(35.f * quality)));
  style.outdoor_share = rng.Uniform(0.15f, 0.7f);
  style.favourite_illumination = 1 + rng.Below(3);
  return style;
}

// ---------------------------------------------------------------------------
// Dealing labels and splits from decks keeps every domain balanced.

template <int N>
std::array<int, N> ShuffledDeck(uint64_t key) {
  std::array<int, N> deck;
  for (int i = 0; i < N; ++i) deck[i] = i;
  Random rng(key);
  for (int i = N - 1; i > 0; --i) std::swap(deck[i], deck[rng.Below(i + 1)]);
  return deck;
}

int SpoofTypeOfVideo(uint64_t seed, int domain, int64_t video) {
  const int64_t cycle = video / kLabelDeck;
  const int pos = static_cast<int>(video % kLabelDeck);
  const auto deck = ShuffledDeck<kLabelDeck>(
      HashKeys({seed, kTagLabelDeck, static_cast<uint64_t>(domain), static_cast<uint64_t>(cycle)}));
  if (deck[pos] < kLiveInDeck) return 0;
  int rank = 0;  // spoof videos before this one in its cycle
  for (int j = 0; j < pos; ++j) rank += deck[j] >= kLiveInDeck;
  const int64_t spoof_index = cycle * (kLabelDeck - kLiveInDeck) + rank;
  const auto types = ShuffledDeck<kSpoofTypes>(HashKeys(
      {seed, kTagSpoofDeck, static_cast<uint64_t>(domain), static_cast<uint64_t>(spoof_index / kSpoofTypes)}));
  return 1 + types[spoof_index % kSpoofTypes];
}

Split SplitOfSubject(uint64_t seed, int domain, int64_t subject) {
  const auto deck = ShuffledDeck<kSplitDeck>(HashKeys(
      {seed, kTagSplitDeck, static_cast<uint64_t>(domain), static_cast<uint64_t>(subject / kSplitDeck)}));
  return deck[subject % kSplitDeck] == 0 ? Split::kTest : Split::kTrain;
}

// ---------------------------------------------------------------------------
// Scene description.

// A person's identity: colours and face geometry. Feature positions are in
// face-local units: u = x / half-width, v = y / half-height (v down).
struct Appearance {
  Rgb skin, hair, iris, lip;
  float face_half_width;  // fraction of the image side
  float aspect;           // half-height / half-width
  float eye_dx, eye_y, eye_rx, eye_ry;
  float brow_gap, brow_thickness, brow_arch;
  float nose_tip, nose_width;
  float mouth_y, mouth_rx, mouth_ry;
  float hairline, hair_length, hair_volume;
  float ear_size;
  float grain;            // skin texture strength
};

Appearance MakeAppearance(Random& rng) {
  Appearance a;
  const float tone = rng.Uniform();
  const Rgb light_skin = {0.95f, 0.79f, 0.69f}, dark_skin = {0.36f, 0.23f, 0.16f};
  const float warmth = rng.Uniform(0.97f, 1.05f);
  for (int k = 0; k < 3; ++k) a.skin[k] = Lerp(light_skin[k], dark_skin[k], tone) * rng.Uniform(0.96f, 1.04f);
  a.skin[0] *= warmth;
  static constexpr std::array<Rgb, 6> kHair = {{{0.05f, 0.045f, 0.04f},
                                                {0.18f, 0.11f, 0.06f},
                                                {0.38f, 0.25f, 0.14f},
                                                {0.74f, 0.60f, 0.38f},
                                                {0.58f, 0.57f, 0.55f},
                                                {0.52f, 0.22f, 0.10f}}};
  const Rgb& hair = kHair[rng.Below(6)];
  a.hair = Scale(hair, rng.Uniform(0.8f, 1.15f));
  static constexpr std::array<Rgb, 4> kIris = {{{0.30f, 0.17f, 0.08f},
                                                {0.12f, 0.07f, 0.04f},
                                                {0.25f, 0.42f, 0.62f},
                                                {0.30f, 0.45f, 0.28f}}};
  a.iris = kIris[rng.Below(4)];
  a.lip = Mul(a.skin, {rng.Uniform(0.85f, 0.98f), rng.Uniform(0.55f, 0.68f), rng.Uniform(0.58f, 0.70f)});
  a.face_half_width = rng.Uniform(0.17f, 0.21f);
  a.aspect = rng.Uniform(1.22f, 1.42f);
  a.eye_dx = rng.Uniform(0.34f, 0.42f);
  a.eye_y = rng.Uniform(-0.14f, -0.03f);
  a.eye_rx = rng.Uniform(0.14f, 0.18f);
  a.eye_ry = rng.Uniform(0.055f, 0.075f);
  a.brow_gap = rng.Uniform(0.13f, 0.19f);
  a.brow_thickness = rng.Uniform(0.018f, 0.034f);
  a.brow_arch = rng.Uniform(0.02f, 0.06f);
  a.nose_tip = rng.Uniform(0.22f, 0.31f);
  a.nose_width = rng.Uniform(0.09f, 0.13f);
  a.mouth_y = rng.Uniform(0.50f, 0.60f);
  a.mouth_rx = rng.Uniform(0.19f, 0.28f);
  a.mouth_ry = rng.Uniform(0.045f, 0.07f);
  a.hairline = rng.Uniform(-0.64f, -0.42f);
  a.hair_length = rng.Uniform();
  a.hair_volume = rng.Uniform(1.05f, 1.18f);
  a.ear_size = rng.Uniform(0.85f, 1.15f);
  a.grain = rng.Uniform(0.02f, 0.045f);
  return a;
}

// Where the face sits in the frame (pixels) and its in-plane rotation.
struct Pose {
  float cx, cy;   // face centre
  float a, b;     // half-width, half-height
  float cos_roll, sin_roll;
  float gaze;     // horizontal iris offset, fraction of the eye half-width
  // Integer anchor so skin texture moves with the face instead of swimming.
  int anchor_x, anchor_y;
};

Pose MakePose(const Appearance& app, int size, float cx, float cy, float distance, float roll, float gaze) {
  Pose p;
  p.cx = cx * size;
  p.cy = cy * size;
  p.a = app.face_half_width * distance * size;
  p.b = p.a * app.aspect;
  p.cos_roll = std::cos(roll);
  p.sin_roll = std::sin(roll);
  p.gaze = gaze;
  p.anchor_x = static_cast<int>(std::lround(p.cx));
  p.anchor_y = static_cast<int>(std::lround(p.cy));
  return p;
}

struct Light {
  std::array<float, 3> dir;  // towards the light; y down, z towards the camera
  float key, ambient;
};

// How much of a real face's detail a rendered face keeps (masks lose it).
struct Detail {
  float grain = 1.f;     // skin grain and pores
  float shading = 1.f;   // 3-D shading relative to a flat, frontal shade
  float features = 1.f;  // opacity of painted features (brows, lash lines, lips)
  float gloss = 0.f;     // extra specular (plastic, silicone)
};

struct Person {
  const Appearance* app;
  Rgb cloth;
  Pose pose;
  Light light;
  Detail detail;
  uint64_t texture_key;
};

struct Backdrop {
  int environment;  // 0 indoor, 1 outdoor
  Rgb wall, accent;
  float horizon;    // indoor: floor line; outdoor: sky/ground line (fraction of height)
  std::array<float, 4> panel;  // indoor door/picture rectangle x0, y0, x1, y1 (fractions)
  float gradient;   // horizontal light fall-off
  uint64_t key;
};

Backdrop MakeBackdrop(Random& rng, int environment) {
  Backdrop b;
  b.environment = environment;
  if (environment == 0) {
    static constexpr std::array<Rgb, 5> kWalls = {{{0.82f, 0.78f, 0.70f},
                                                   {0.70f, 0.72f, 0.74f},
                                                   {0.62f, 0.70f, 0.78f},
                                                   {0.80f, 0.74f, 0.62f},
                                                   {0.55f, 0.60f, 0.52f}}};
    const Rgb& wall = kWalls[rng.Below(5)];
    b.wall = Scale(wall, rng.Uniform(0.75f, 1.05f));
    b.accent = {rng.Uniform(0.2f, 0.6f), rng.Uniform(0.15f, 0.5f), rng.Uniform(0.1f, 0.45f)};
    b.horizon = rng.Uniform(0.7f, 1.1f);
  } else {
    b.wall = {rng.Uniform(0.40f, 0.60f), rng.Uniform(0.58f, 0.72f), rng.Uniform(0.85f, 1.0f)};
    b.accent = rng.Chance(0.6f) ? Rgb{rng.Uniform(0.15f, 0.3f), rng.Uniform(0.3f, 0.5f), rng.Uniform(0.08f, 0.2f)}
                                : Rgb{rng.Uniform(0.45f, 0.6f), rng.Uniform(0.45f, 0.58f), rng.Uniform(0.42f, 0.55f)};
    b.horizon = rng.Uniform(0.25f, 0.6f);
  }
  const float x0 = rng.Uniform(-0.1f, 0.7f), y0 = rng.Uniform(0.0f, 0.4f);
  b.panel = {x0, y0, x0 + rng.Uniform(0.15f, 0.4f), y0 + rng.Uniform(0.2f, 0.6f)};
  b.gradient = rng.Uniform(-0.35f, 0.35f);
  b.key = rng.Key();
  return b;
}

void RenderBackdrop(Canvas& canvas, const Backdrop& b, float level) {
  const int w = canvas.width, h = canvas.height;
  const float s = w / kReferenceSize;
  const float inv_w = 1.f / w, inv_h = 1.f / h;
  ValueNoise wall_noise(b.key, 24.f * s), panel_noise(b.key + 1, 8.f * s);
  ValueNoise cloud_noise(b.key, 1.f), coarse_noise(b.key, 10.f * s), fine_noise(b.key + 1, 3.f * s);
  for (int y = 0; y < h; ++y) {
    const float fy = (y + 0.5f) * inv_h;
    for (int x = 0; x < w; ++x) {
      const float fx = (x + 0.5f) * inv_w;
      Rgb c;
      if (b.environment == 0) {
        const float texture = 0.93f + 0.14f * wall_noise(x, y);
        c = Scale(b.wall, texture);
        if (fy > b.horizon) c = Scale(b.accent, 0.8f * texture);
        const float px = std::min(fx - b.panel[0], b.panel[2] - fx);
        const float py = std::min(fy - b.panel[1], b.panel[3] - fy);
        const float inside = std::min(px, py) * w;  // pixels inside the panel edge
        if (inside > 0.f) {
          const float frame = inside < 3.f * s ? 0.55f : 1.f;
          c = Scale(b.accent, frame * (0.9f + 0.2f * panel_noise(x, y)));
        }
      } else if (fy < b.horizon) {
        const float t = fy / b.horizon;
        // Clouds are stretched horizontally: x and y use different lattice spacings.
        const float cloud = std::max(0.f, cloud_noise(x / (40.f * s), y / (18.f * s)) - 0.5f) * 1.6f;
        for (int k = 0; k < 3; ++k) c[k] = Lerp(Lerp(b.wall[k], 0.92f, 0.6f * t), 1.f, cloud) * 1.1f;
      } else {
        c = Scale(b.accent, (0.55f + 0.5f * coarse_noise(x, y)) * (0.85f + 0.3f * fine_noise(x, y)) * 1.1f);
      }
      const float light = level * (1.f + b.gradient * (fx - 0.5f));
      float* p = canvas.At(x, y);
      for (int k = 0; k < 3; ++k) p[k] = c[k] * light;
    }
  }
}

// ---------------------------------------------------------------------------
// The person: one pass over its bounding box, layers painted back to front.

float Diffuse(const Light& light, float nx, float ny, float nz) {
  const float inv = 1.f / std::sqrt(nx * nx + ny * ny + nz * nz);
  const float d = (nx * light.dir[0] + ny * light.dir[1] + nz * light.dir[2]) * inv;
  return light.ambient + light.key * std::max(0.f, d);
}

float Specular(const Light& light, float nx, float ny, float nz) {
  // Blinn half vector with the viewer on +z.
  float hx = light.dir[0], hy = light.dir[1], hz = light.dir[2] + 1.f;
  const float hn = 1.f / std::sqrt(hx * hx + hy * hy + hz * hz);
  const float nn = 1.f / std::sqrt(nx * nx + ny * ny + nz * nz);
  float c = std::max(0.f, (nx * hx + ny * hy + nz * hz) * hn * nn);
  c *= c;
  c *= c;
  c *= c;
  c *= c;  // ^16: a tight highlight
  return c * light.key;
}

// Signed distance (pixels, < 0 inside) of an ellipse in face-local units.
float EllipseDistance(float du, float dv, float ru, float rv, const Pose& pose) {
  const float q = (du * du) / (ru * ru) + (dv * dv) / (rv * rv);
  return (std::sqrt(q) - 1.f) * std::min(ru * pose.a, rv * pose.b);
}

// Anti-aliased coverage of an ellipse; rejects far pixels before the sqrt
// (coverage is zero once the distance exceeds half a pixel).
float EllipseCoverage(float du, float dv, float ru, float rv, const Pose& pose) {
  const float q = (du * du) / (ru * ru) + (dv * dv) / (rv * rv);
  const float radius = std::min(ru * pose.a, rv * pose.b);
  const float reach = 1.f + 0.5f / radius;
  if (q >= reach * reach) return 0.f;
  return Coverage((std::sqrt(q) - 1.f) * radius);
}

void ToFaceLocal(const Pose& pose, float x, float y, float* u, float* v) {
  const float px = x - pose.cx, py = y - pose.cy;
  *u = (pose.cos_roll * px + pose.sin_roll * py) / pose.a;
  *v = (-pose.sin_roll * px + pose.cos_roll * py) / pose.b;
}

void RenderPerson(Canvas& canvas, const Person& person) {
  const Appearance& app = *person.app;
  const Pose& pose = person.pose;
  const Light& light = person.light;
  const Detail& detail = person.detail;
  const float flat = light.ambient + light.key * std::max(0.f, light.dir[2]);
  const float px_u = 1.f / pose.a, px_v = 1.f / pose.b;  // one pixel in face-local units
  const float hair_bottom = 0.15f + 1.1f * app.hair_length;
  const float brow_y = app.eye_y - app.brow_gap;
  const float reach = 2.5f * pose.a;
  const int x0 = std::max(0, static_cast<int>(pose.cx - reach));
  const int x1 = std::min(canvas.width, static_cast<int>(pose.cx + reach) + 1);
  const int y0 = std::max(0, static_cast<int>(pose.cy - 1.3f * std::max(pose.a, pose.b)));
  auto shaded = [&](const Rgb& base, float shade) { return Scale(base, flat + (shade - flat) * detail.shading); };

  for (int y = y0; y < canvas.height; ++y) {
    for (int x = x0; x < x1; ++x) {
      float u, v;
      ToFaceLocal(pose, x + 0.5f, y + 0.5f, &u, &v);
      float* out = canvas.At(x, y);
      const uint64_t texel = PixelKey(x - pose.anchor_x, y - pose.anchor_y);

      // Hair: strands are a grating along the head plus per-pixel jitter.
      auto hair_colour = [&](float hu, float hv) {
        const float strands = 0.86f + 0.1f * CosTurns(u * 11.f + v * 2.f) +
                              0.05f * detail.grain * HashGauss(person.texture_key + 7, texel);
        const float nz = std::sqrt(std::max(0.f, 1.f - hu * hu - hv * hv));
        return shaded(app.hair, Diffuse(light, hu, hv, nz + 0.2f) * strands);
      };
      // Hair mass behind the head; long hair falls to the shoulders.
      if (v < hair_bottom + px_v && std::abs(u) < app.hair_volume + 2.f * px_u) {
        const float hair_d =
            v > -0.1f ? std::max((std::abs(u) - app.hair_volume) * pose.a, (v - hair_bottom) * pose.b)
                      : EllipseDistance(u, v + 0.1f, app.hair_volume, app.hair_volume * 0.98f, pose);
        const float hair_back = Coverage(hair_d);
        if (hair_back > 0.f)
          Blend(out, hair_colour(u / app.hair_volume, std::min(0.f, v) / app.hair_volume), hair_back);
      }
      // Neck: a cylinder, darkened under the chin.
      if (v > 0.3f) {
        const float nu = u / 0.42f;
        const float neck = Coverage(std::max((std::abs(u) - 0.42f) * pose.a, (0.5f - v) * pose.b));
        if (neck > 0.f) {
          const float nz = std::sqrt(std::max(0.f, 1.f - nu * nu));
          const float chin_shadow = 0.55f + 0.45f * SmoothStep(0.8f, 1.25f, v);
          Blend(out, shaded(app.skin, Diffuse(light, nu, 0.f, nz + 0.1f) * chin_shadow), neck);
        }
      }
      // Torso and shoulders.
      const float tu = u / 2.2f, tv = (v - 2.25f) / 1.15f;
      const float torso = v > 1.f ? EllipseCoverage(u, v - 2.25f, 2.2f, 1.15f, pose) : 0.f;
      if (torso > 0.f) {
        const float nz = std::sqrt(std::max(0.f, 1.f - tu * tu - tv * tv));
        Blend(out, shaded(person.cloth, Diffuse(light, tu, tv, nz + 0.3f)), torso);
      }
      // Ears, lit mostly from the side they face.
      for (int side = -1; side <= 1 && std::abs(v) < 0.5f; side += 2) {
        const float ear =
            EllipseCoverage(u - side * 0.98f, v - 0.05f, 0.12f * app.ear_size, 0.21f * app.ear_size, pose);
        if (ear > 0.f) Blend(out, shaded(app.skin, Diffuse(light, side * 0.8f, 0.f, 0.6f) * 0.92f), ear);
      }

      // Face: an ellipsoid whose normal is bent by the nose ridge.
      const float r2 = u * u + v * v;
      const float face = EllipseCoverage(u, v, 1.f, 1.f, pose);
      if (face > 0.f) {
        float nx = u * 0.85f, ny = v * 0.85f;
        const float nz = std::sqrt(std::max(0.f, 1.f - r2)) + 0.25f;
        const float tx = u / app.nose_width;
        if (std::abs(tx) < 1.f && v > app.eye_y && v < app.nose_tip + 0.06f) {
          const float rise = SmoothStep(app.eye_y, app.nose_tip, v);
          const float fall = 1.f - SmoothStep(app.nose_tip, app.nose_tip + 0.06f, v);
          const float profile = rise * fall;
          // Minus the slope of a (1 - tx^2)^2 ridge: the side away from the light darkens.
          nx += 0.045f * 4.f * tx * (1.f - tx * tx) / app.nose_width * profile;
          if (v > app.nose_tip) ny += 0.6f * (1.f - tx * tx) * (1.f - fall);  // underside faces down
        }
        float shade = Diffuse(light, nx, ny, nz);
        // Ambient occlusion of the eye sockets.
        for (int side = -1; side <= 1; side += 2) {
          const float du = (u - side * app.eye_dx) / (app.eye_rx * 1.7f);
          const float dv = (v - app.eye_y + 0.02f) / (app.eye_ry * 2.8f);
          const float w = std::max(0.f, 1.f - du * du - dv * dv);
          shade *= 1.f - 0.16f * w;
        }
        Rgb skin = app.skin;
        // Cheek blush.
        for (int side = -1; side <= 1; side += 2) {
          const float du = u - side * 0.5f, dv = v - 0.28f;
          const float w = std::max(0.f, 1.f - (du * du + dv * dv) / 0.06f) * detail.features;
          skin[1] *= 1.f - 0.06f * w;
          skin[2] *= 1.f - 0.06f * w;
        }
        const float grain = detail.grain * app.grain;
        float texture = 1.f + grain * HashGauss(person.texture_key, texel);
        if (grain > 0.f && HashUniform(person.texture_key + 1, texel) < 0.03f) texture *= 1.f - 2.f * grain;
        Rgb c = shaded(skin, shade * texture);
        const float spec = (0.06f + detail.gloss) * Specular(light, nx, ny, nz);
        for (int k = 0; k < 3; ++k) c[k] += spec;

        for (int side = -1; side <= 1; side += 2) {
          const float du = u - side * app.eye_dx, dv = v - app.eye_y;
          // Eye: sclera, iris, pupil and an upper lash line.
          const float eye = EllipseCoverage(du, dv, app.eye_rx, app.eye_ry, pose);
          if (eye > 0.f) {
            const float iu = (du - pose.gaze * app.eye_rx * 0.45f) * pose.a, iv = dv * pose.b;
            const float iris_r = 0.95f * app.eye_ry * pose.b;
            const float di = std::sqrt(iu * iu + iv * iv);
            Rgb e = Scale({0.9f, 0.88f, 0.85f}, shade * 0.9f);
            const float iris = Coverage(di - iris_r) * detail.features + (1.f - detail.features) * 0.3f;
            for (int k = 0; k < 3; ++k) e[k] = Lerp(e[k], app.iris[k] * shade * (0.6f + 0.4f * di / iris_r), iris);
            const float pupil = Coverage(di - 0.42f * iris_r) * detail.features;
            for (int k = 0; k < 3; ++k) e[k] = Lerp(e[k], 0.03f, pupil);
            const float lid = dv < 0.f ? SmoothStep(0.45f, 0.9f, -dv / app.eye_ry) * detail.features : 0.f;
            for (int k = 0; k < 3; ++k) e[k] = Lerp(e[k], 0.06f, lid);
            for (int k = 0; k < 3; ++k) c[k] = Lerp(c[k], e[k], eye);
          }
          // Brow: an arched band, thinner towards the temple.
          const float bu = du / (app.eye_rx * 1.35f);
          if (std::abs(bu) < 1.f) {
            const float centre = brow_y + app.brow_arch * bu * bu;
            const float thickness = app.brow_thickness * (1.f - 0.45f * std::max(0.f, side * bu));
            const float brow = Coverage((std::abs(v - centre) - thickness) * pose.b) *
                               Coverage((std::abs(bu) - 1.f) * app.eye_rx * 1.35f * pose.a) * 0.85f *
                               detail.features;
            if (brow > 0.f) for (int k = 0; k < 3; ++k) c[k] = Lerp(c[k], app.hair[k] * 0.7f * shade, brow);
          }
          // Nostril.
          const float nostril = EllipseCoverage(u - side * app.nose_width * 0.6f, v - app.nose_tip - 0.035f,
                                                0.045f, 0.022f, pose) *
                                0.7f * detail.features;
          if (nostril > 0.f) for (int k = 0; k < 3; ++k) c[k] = Lerp(c[k], c[k] * 0.35f, nostril);
        }
        // Mouth: lips and the dark line between them.
        const float dv = v - app.mouth_y;
        const float lips = EllipseCoverage(u, dv, app.mouth_rx, app.mouth_ry, pose);
        if (lips > 0.f) {
          const float upper = dv < 0.f ? 0.88f : 1.f;
          const Rgb lip = shaded(app.lip, shade * upper);
          for (int k = 0; k < 3; ++k) c[k] = Lerp(c[k], lip[k], lips * (0.4f + 0.6f * detail.features));
          const float line = Coverage((std::abs(dv) - 0.35f * px_v - 0.006f) * pose.b) * lips * detail.features;
          for (int k = 0; k < 3; ++k) c[k] = Lerp(c[k], 0.12f * app.lip[k], line);
        }
        // Fringe: hair over the forehead down to a hairline that dips at the temples.
        const float hairline = app.hairline + 0.3f * u * u + 0.04f * CosTurns(u * 2.5f);
        const float fringe = Coverage((v - hairline) * pose.b);
        if (fringe > 0.f) {
          const Rgb hair = hair_colour(u, v);
          for (int k = 0; k < 3; ++k) c[k] = Lerp(c[k], hair[k], fringe);
        }
        Blend(out, c, face);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Illumination and camera.

struct SceneLight {
  float background;  // backdrop level
  float key, ambient;
  float noise_gain;  // low light raises the sensor gain, so noise
};

SceneLight IlluminationLight(int illumination) {
  switch (illumination) {
    case 1: return {1.25f, 1.2f, 0.10f, 1.f};   // strong: bright, hard shadows
    case 2: return {1.75f, 0.30f, 0.22f, 1.4f};  // back: bright background, dark face
    case 3: return {0.45f, 0.36f, 0.13f, 2.6f};  // dark
    default: return {1.f, 0.72f, 0.32f, 1.f};    // normal
  }
}

Light MakeLight(float azimuth, float elevation, float key, float ambient) {
  Light l;
  l.dir = {std::sin(azimuth) * std::cos(elevation), -std::sin(elevation), std::cos(azimuth) * std::cos(elevation)};
  l.key = key;
  l.ambient = ambient;
  return l;
}

struct Camera {
  float exposure;
  Rgb gain;
  float contrast;
  float blur_px;
  float noise_sigma;
  uint64_t noise_key;
};

RgbImage Develop(Canvas& canvas, const Camera& camera) {
  Blur(canvas, camera.blur_px);
  RgbImage image;
  image.width = canvas.width;
  image.height = canvas.height;
  image.pixels.resize(canvas.rgb.size());
  for (size_t i = 0; i < canvas.rgb.size(); ++i) {
    const int k = static_cast<int>(i % 3);
    float v = canvas.rgb[i] * camera.exposure * camera.gain[k];
    v = (v - 0.45f) * camera.contrast + 0.45f;
    // Read noise plus a signal-dependent (shot-like) part.
    v += camera.noise_sigma * (0.5f + Clamp01(v)) * HashGauss(camera.noise_key, i);
    image.pixels[i] = static_cast<uint8_t>(Clamp01(v) * 255.f + 0.5f);
  }
  return image;
}

// ---------------------------------------------------------------------------
// Attack media.

// A rectangle in camera pixels (a print or a device), rotated about its centre.
struct Placement {
  float cx, cy, half_w, half_h, cos_r, sin_r;
  void ToLocal(float x, float y, float* lx, float* ly) const {
    const float px = x - cx, py = y - cy;
    *lx = cos_r * px + sin_r * py;
    *ly = -sin_r * px + cos_r * py;
  }
};

Placement MakePlacement(float cx, float cy, float half_w, float half_h, float rotation) {
  return {cx, cy, half_w, half_h, std::cos(rotation), std::sin(rotation)};
}

// The victim's picture shown by a print or a screen: an ordinary portrait with its
// own backdrop, lighting and (mild) camera blur, since it was photographed once already.
Canvas RenderVictimPicture(int size, const Appearance& app, Random& rng, float jitter_x, float jitter_y) {
  Canvas picture(size, size);
  const Backdrop backdrop = MakeBackdrop(rng, rng.Chance(0.3f) ? 1 : 0);
  RenderBackdrop(picture, backdrop, rng.Uniform(0.85f, 1.1f));
  const Rgb cloth = {rng.Uniform(0.1f, 0.7f), rng.Uniform(0.1f, 0.6f), rng.Uniform(0.1f, 0.7f)};
  const float cx = rng.Uniform(0.45f, 0.55f), cy = rng.Uniform(0.4f, 0.48f), distance = rng.Uniform(0.95f, 1.15f);
  const float roll = rng.Uniform(-0.08f, 0.08f), gaze = rng.Uniform(-0.3f, 0.3f);
  const float azimuth = rng.Uniform(-0.6f, 0.6f), elevation = rng.Uniform(0.3f, 0.7f);
  Person person{&app,
                cloth,
                MakePose(app, size, cx + jitter_x, cy + jitter_y, distance, roll, gaze),
                MakeLight(azimuth, elevation, 0.72f, 0.32f),
                Detail{},
                rng.Key()};
  RenderPerson(picture, person);
  Blur(picture, rng.Uniform(0.3f, 1.0f) * size / kReferenceSize);
  return picture;
}

// "Cover" mapping of the square picture onto a rectangle of half-size (hw, hh).
Rgb SampleCover(const Canvas& picture, float lx, float ly, float hw, float hh) {
  const float k = picture.width / (2.f * std::max(hw, hh));
  return picture.Sample(picture.width * 0.5f + lx * k, picture.height * 0.5f + ly * k);
}

// Print attacks (photo, poster, A4): the picture is printed with a dot screen,
// fewer tones and a narrower range, on textured paper lit flat by the scene, and
// held in front of the real backdrop whose edge shows where the paper ends.
void RenderPrint(Canvas& canvas, int spoof_type, const Canvas& picture, float strength, const Light& light,
                 Random& vrng, float jitter_x, float jitter_y, float jitter_r) {
  const float size = static_cast<float>(canvas.width);
  const float s = size / kReferenceSize;
  float half_w, aspect, margin, period;
  switch (spoof_type) {
    case 1:  // photo: smaller than the frame, edges usually visible
      half_w = vrng.Uniform(0.32f, 0.47f) * size;
      aspect = vrng.Uniform(1.0f, 1.35f);
      margin = vrng.Chance(0.5f) ? vrng.Uniform(0.02f, 0.05f) : 0.f;
      period = vrng.Uniform(2.2f, 3.2f);
      break;
    case 2:  // poster: large, edges often out of frame, coarse screen
      half_w = vrng.Uniform(0.48f, 0.75f) * size;
      aspect = vrng.Uniform(1.2f, 1.45f);
      margin = 0.f;
      period = vrng.Uniform(3.f, 5.f);
      break;
    default:  // A4: white sheet with the picture inside a margin
      half_w = vrng.Uniform(0.4f, 0.52f) * size;
      aspect = 1.414f;
      margin = vrng.Uniform(0.06f, 0.12f);
      period = vrng.Uniform(2.2f, 3.5f);
      break;
  }
  const float offset_x = vrng.Uniform(-0.08f, 0.08f), offset_y = vrng.Uniform(-0.06f, 0.1f);
  const float rotation = vrng.Uniform(-0.12f, 0.12f);
  const Placement paper =
      MakePlacement(size * (0.5f + offset_x + jitter_x), size * (0.5f + offset_y + jitter_y), half_w,
                    half_w * aspect, rotation + jitter_r);
  const float inner_w = paper.half_w * (1.f - 2.f * margin);
  // A4 carries a square picture on a tall sheet; photos and posters fill the sheet inside a uniform margin.
  const float inner_h = spoof_type == 3 ? inner_w : paper.half_h - (paper.half_w - inner_w);
  period = std::max(2.f, period * s);
  const float halftone = strength * vrng.Uniform(0.3f, 0.9f);
  const float sharpness = vrng.Uniform(2.5f, 5.f);
  const float levels = Lerp(48.f, 6.f, strength * vrng.Uniform(0.4f, 1.f));
  const float banding = strength * vrng.Uniform(0.4f, 1.f);
  const float black = 0.02f + 0.14f * strength * vrng.Uniform();
  const float white = 0.98f - 0.15f * strength * vrng.Uniform();
  const float texture = 0.03f + 0.08f * strength * vrng.Uniform();
  const Rgb paper_white = {vrng.Uniform(0.9f, 0.97f), vrng.Uniform(0.9f, 0.96f), vrng.Uniform(0.84f, 0.94f)};
  const float grad_x = vrng.Uniform(-0.12f, 0.12f), grad_y = vrng.Uniform(-0.12f, 0.12f);
  const float edge_shadow = vrng.Uniform(0.15f, 0.5f);
  const float shadow_w = 1.5f * s;
  const uint64_t paper_key = vrng.Key();
  ValueNoise fibre_noise(paper_key, 5.f * s);
  // Print screens use different angles per ink so the dots of the channels interleave.
  static constexpr std::array<float, 3> kScreenAngles = {0.2618f, 1.309f, 0.f};  // 15, 75, 0 degrees
  std::array<float, 3> screen_cos, screen_sin;
  for (int k = 0; k < 3; ++k) {
    screen_cos[k] = std::cos(kScreenAngles[k]) / period;
    screen_sin[k] = std::sin(kScreenAngles[k]) / period;
  }
  // The sheet is flat and faces the camera: one diffuse term (normalised so normal
  // light gives ~1), then a gentle gradient.
  const float paper_light = 1.1f * (light.ambient + light.key * std::max(0.f, light.dir[2]));

  for (int y = 0; y < canvas.height; ++y) {
    for (int x = 0; x < canvas.width; ++x) {
      float lx, ly;
      paper.ToLocal(x + 0.5f, y + 0.5f, &lx, &ly);
      const float outside = std::max(std::abs(lx) - paper.half_w, std::abs(ly) - paper.half_h);
      if (outside > shadow_w + 1.f) continue;
      float* out = canvas.At(x, y);
      if (outside > -0.5f) {
        const float shadow = edge_shadow * Clamp01(1.f - outside / shadow_w);
        for (int k = 0; k < 3; ++k) out[k] *= 1.f - shadow;
      }
      const float cover = Coverage(outside);
      if (cover <= 0.f) continue;
      Rgb c = paper_white;
      if (std::abs(lx) < inner_w && std::abs(ly) < inner_h) {
        Rgb ink = SampleCover(picture, lx, ly, inner_w, inner_h);
        for (int k = 0; k < 3; ++k) {
          float v = Clamp01(ink[k]);
          v = Lerp(v, std::round(v * levels) / levels, banding);
          const float sx = lx * screen_cos[k] + ly * screen_sin[k];
          const float sy = -lx * screen_sin[k] + ly * screen_cos[k];
          const float screen = 0.5f + 0.25f * (CosTurns(sx) + CosTurns(sy));
          v = Lerp(v, Clamp01((v - screen) * sharpness + 0.5f), halftone);
          c[k] = paper_white[k] * (black + v * (white - black));
        }
      }
      const float fibre = texture * (fibre_noise(lx, ly) - 0.5f) +
                          0.4f * texture * HashGauss(paper_key, PixelKey(static_cast<int>(std::floor(lx)), static_cast<int>(std::floor(ly))));
      const float lit = paper_light * (1.f + grad_x * lx / paper.half_w + grad_y * ly / paper.half_h);
      Blend(out, Scale(c, lit * (1.f + fibre)), cover);
    }
  }
}

// Replay attacks (pc, pad, phone): a self-luminous screen with its pixel grid,
// a moire beat from the grid against the sensor, a glare reflection, and a dark
// bezel lit by the room.
void RenderReplay(Canvas& canvas, int spoof_type, const Canvas& picture, float strength, const Light& light,
                  Random& vrng, float jitter_x, float jitter_y, float jitter_r) {
  const float size = static_cast<float>(canvas.width);
  const float s = size / kReferenceSize;
  float half_w, aspect, bezel;
  switch (spoof_type) {
    case 7:  // pc monitor: wider than the frame, landscape, thin bezel
      half_w = vrng.Uniform(0.55f, 0.75f) * size;
      aspect = vrng.Uniform(0.6f, 0.72f);
      bezel = vrng.Uniform(0.015f, 0.03f);
      break;
    case 8:  // pad: portrait, medium bezel
      half_w = vrng.Uniform(0.36f, 0.48f) * size;
      aspect = vrng.Uniform(1.25f, 1.4f);
      bezel = vrng.Uniform(0.05f, 0.08f);
      break;
    default:  // phone: small, tall, thick bezel
      half_w = vrng.Uniform(0.26f, 0.36f) * size;
      aspect = vrng.Uniform(1.8f, 2.1f);
      bezel = vrng.Uniform(0.05f, 0.08f);
      break;
  }
  const float offset_x = vrng.Uniform(-0.07f, 0.07f), offset_y = vrng.Uniform(-0.06f, 0.08f);
  const float rotation = vrng.Uniform(-0.1f, 0.1f);
  const Placement device =
      MakePlacement(size * (0.5f + offset_x + jitter_x), size * (0.5f + offset_y + jitter_y), half_w,
                    half_w * aspect, rotation + jitter_r);
  const float bezel_px = bezel * 2.f * half_w;
  const float screen_w = device.half_w - bezel_px, screen_h = device.half_h - bezel_px;
  const float pitch = std::max(1.5f, vrng.Uniform(1.8f, 3.2f) * s);
  const float subpixel = strength * vrng.Uniform(0.06f, 0.22f);
  const float scanline = strength * vrng.Uniform(0.0f, 0.15f);
  // Two near-identical gratings: their product beats at the difference frequency
  // (visible bands) and, with a slight curvature, bends like real moire.
  const float moire = strength * vrng.Uniform(0.04f, 0.2f);
  const float f1 = 1.f / (vrng.Uniform(2.2f, 4.f) * s);
  const float a1 = vrng.Uniform(0.f, kPi);
  const float skew = vrng.Uniform(0.03f, 0.15f);
  const float a2 = vrng.Chance(0.5f) ? a1 + skew : a1 - skew;
  const float f2 = f1 * vrng.Uniform(0.95f, 1.05f);
  const float curvature = vrng.Uniform(-1.f, 1.f) * 0.002f / (s * s);
  const float g1x = f1 * std::cos(a1), g1y = f1 * std::sin(a1), g2x = f2 * std::cos(a2), g2y = f2 * std::sin(a2);
  const float glare = strength * vrng.Uniform(0.05f, 0.5f);
  const float glare_x = vrng.Uniform(-0.6f, 0.6f) * screen_w, glare_y = vrng.Uniform(-0.6f, 0.6f) * screen_h;
  const float glare_rx = vrng.Uniform(0.15f, 0.4f) * screen_w, glare_ry = vrng.Uniform(0.1f, 0.35f) * screen_h;
  const float black = 0.02f + 0.08f * strength * vrng.Uniform();
  const float tone = vrng.Uniform(-0.4f, 0.4f);  // screen gamma, as a midtone lift/drop
  const Rgb white_point = {vrng.Uniform(0.9f, 1.0f), vrng.Uniform(0.95f, 1.02f), vrng.Uniform(1.0f, 1.12f)};
  const float brightness = vrng.Uniform(0.8f, 1.05f);
  const Rgb bezel_colour = Scale({1.f, 1.f, 1.05f}, vrng.Uniform(0.03f, 0.09f));
  const float bezel_light = 1.1f * (light.ambient + light.key * std::max(0.f, light.dir[2]));

  for (int y = 0; y < canvas.height; ++y) {
    for (int x = 0; x < canvas.width; ++x) {
      float lx, ly;
      device.ToLocal(x + 0.5f, y + 0.5f, &lx, &ly);
      const float body = Coverage(std::max(std::abs(lx) - device.half_w, std::abs(ly) - device.half_h));
      if (body <= 0.f) continue;
      float* out = canvas.At(x, y);
      // A glossy bezel picks up a sheen that varies across the device.
      Rgb c = Scale(bezel_colour, bezel_light * (1.f + 2.f * Clamp01(0.5f - 0.5f * ly / device.half_h)));
      const float screen = Coverage(std::max(std::abs(lx) - screen_w, std::abs(ly) - screen_h));
      if (screen > 0.f) {
        Rgb p = SampleCover(picture, lx, ly, screen_w, screen_h);
        const float fx = x + 0.5f - device.cx, fy = y + 0.5f - device.cy;
        const float beat = CosTurns(g1x * fx + g1y * fy) *
                           CosTurns(g2x * fx + g2y * fy + curvature * (fx * fx + fy * fy));
        const float grid = 1.f - scanline * (0.5f + 0.5f * CosTurns(ly / pitch));
        const float gx = (lx - glare_x) / glare_rx, gy = (ly - glare_y) / glare_ry;
        const float g = std::max(0.f, 1.f - gx * gx - gy * gy);
        Rgb sc;
        for (int k = 0; k < 3; ++k) {
          float v = Clamp01(p[k]);
          v += tone * v * (1.f - v);
          v = black + (1.f - black) * v * white_point[k];
          v *= (1.f + subpixel * CosTurns(lx / pitch - k / 3.f)) * grid * (1.f + moire * beat);
          sc[k] = v * brightness + glare * g * g;
        }
        for (int k = 0; k < 3; ++k) c[k] = Lerp(c[k], sc[k], screen);
      }
      Blend(out, c, body);
    }
  }
}

// Mask attacks: the wearer is rendered as a live person, then a flat,
// low-detail rendering of the victim replaces the mask's region with a hard,
// seamed boundary. Paper masks (face, upper body, region) lose most 3-D shading;
// 3-D masks keep it but are glossy and textureless with eye holes.
void RenderMask(Canvas& canvas, int spoof_type, const Person& wearer, const Appearance& victim, float strength,
                Random& vrng) {
  Canvas layer = canvas;  // the backdrop, so the mask layer's blur has real surroundings
  RenderPerson(canvas, wearer);
  Person mask = wearer;
  mask.app = &victim;
  const float s = canvas.width / kReferenceSize;
  mask.detail.grain = 0.f;
  mask.detail.features = Lerp(1.f, 0.45f, strength * vrng.Uniform(0.5f, 1.f));
  bool eye_holes;
  float scale;
  if (spoof_type == 10) {
    mask.detail.shading = 1.f;
    mask.detail.gloss = Lerp(0.05f, 0.45f, strength * vrng.Uniform(0.5f, 1.f));
    eye_holes = true;
    scale = vrng.Uniform(1.0f, 1.04f);
  } else {
    mask.detail.shading = Lerp(0.85f, 0.15f, strength * vrng.Uniform(0.5f, 1.f));
    eye_holes = spoof_type == 4 && vrng.Chance(0.5f);
    scale = vrng.Uniform(0.93f, 1.0f);
  }
  if (spoof_type == 5) mask.cloth = {vrng.Uniform(0.1f, 0.7f), vrng.Uniform(0.1f, 0.6f), vrng.Uniform(0.1f, 0.7f)};
  RenderPerson(layer, mask);
  Blur(layer, Lerp(0.5f, 2.5f, strength * vrng.Uniform(0.4f, 1.f)) * s);
  const float seam = strength * vrng.Uniform(0.1f, 0.5f);
  const float seam_w = std::max(0.7f, 1.2f * s);
  const Appearance& app = *wearer.app;
  const float band_top = app.eye_y - app.brow_gap - vrng.Uniform(0.02f, 0.08f);
  const float band_bottom = app.mouth_y + vrng.Uniform(0.08f, 0.16f);
  const Pose& pose = wearer.pose;

  for (int y = 0; y < canvas.height; ++y) {
    for (int x = 0; x < canvas.width; ++x) {
      float u, v;
      ToFaceLocal(pose, x + 0.5f, y + 0.5f, &u, &v);
      if (v < -1.2f || std::abs(u) > 2.5f) continue;
      float d = EllipseDistance(u, v - 0.03f, scale, scale, pose);  // face region, pixels
      if (spoof_type == 5) {
        const float neck = std::max((std::abs(u) - 0.42f) * pose.a, (0.5f - v) * pose.b);
        d = std::min({d, neck, EllipseDistance(u, v - 2.25f, 2.2f, 1.15f, pose)});
      } else if (spoof_type == 6) {
        d = std::max({d, (band_top - v) * pose.b, (v - band_bottom) * pose.b});
      }
      if (eye_holes) {
        for (int side = -1; side <= 1; side += 2)
          d = std::max(d, -EllipseDistance(u - side * app.eye_dx, v - app.eye_y, app.eye_rx * 1.15f,
                                           app.eye_ry * 1.4f, pose));
      }
      if (d > seam_w + 1.f) continue;
      float* out = canvas.At(x, y);
      const float* m = layer.At(x, y);
      const float cover = Coverage(d);
      const float line = seam * Clamp01(1.f - std::abs(d) / seam_w);
      for (int k = 0; k < 3; ++k) out[k] = Lerp(out[k], m[k], cover) * (1.f - line);
    }
  }
}

// ---------------------------------------------------------------------------
// One sample.

void ValidateOptions(const SynthOptions& o) {
  IF_REQUIRE(o.domains >= 1 && o.domains <= 8, "synth: --domains must be in 1..8, got ", o.domains);
  IF_REQUIRE(o.per_domain >= 8 && o.per_domain <= kIdStride, "synth: --per-domain must be in 8..", kIdStride,
             ", got ", o.per_domain);
  IF_REQUIRE(o.size >= 32 && o.size <= 1024, "synth: --size must be in 32..1024, got ", o.size);
  IF_REQUIRE(o.frames_per_video >= 1 && o.frames_per_video <= o.per_domain,
             "synth: frames_per_video must be in 1..per_domain (", o.per_domain, "), got ", o.frames_per_video);
  IF_REQUIRE(o.jpeg_quality >= 1 && o.jpeg_quality <= 100, "synth: jpeg_quality must be in 1..100, got ",
             o.jpeg_quality);
  IF_REQUIRE(o.threads >= 1 && o.threads <= 256, "synth: threads must be in 1..256, got ", o.threads);
}

std::string DomainName(int domain) { return std::string("syn") + static_cast<char>('A' + domain); }

int PickIllumination(Random& rng, int favourite) {
  const float u = rng.Uniform();
  if (u < 0.5f) return 0;
  if (u < 0.7f) return favourite;
  // The remaining two non-normal codes share the last 30 %.
  const int other = u < 0.85f ? 0 : 1;
  int seen = 0;
  for (int code = 1; code <= 3; ++code) {
    if (code == favourite) continue;
    if (seen++ == other) return code;
  }
  return favourite;
}

SynthSample RenderSample(const SynthOptions& options, const DomainStyle& style, int domain, int64_t index) {
  const uint64_t seed = options.seed, d = static_cast<uint64_t>(domain);
  const int64_t video = index / options.frames_per_video;
  const int frame = static_cast<int>(index % options.frames_per_video);
  const int64_t subject = video / kVideosPerSubject;
  const int size = options.size;
  const float s = size / kReferenceSize;

  SynthSample sample;
  sample.domain = domain;
  SampleAttributes& attr = sample.attributes;
  attr.spoof_type = static_cast<int8_t>(SpoofTypeOfVideo(seed, domain, video));
  attr.label = attr.spoof_type == 0 ? 0 : 1;
  attr.video_id = domain * kIdStride + video;
  attr.subject_id = domain * kIdStride + subject;
  attr.split = SplitOfSubject(seed, domain, subject);
  char source[64];
  std::snprintf(source, sizeof(source), "synth://%s/v%06lld/f%d", DomainName(domain).c_str(),
                static_cast<long long>(video), frame);
  attr.source = source;

  // Video-level choices; every frame of the video draws the same sequence.
  Random vrng(HashKeys({seed, kTagVideo, d, static_cast<uint64_t>(video)}));
  attr.illumination = static_cast<int8_t>(PickIllumination(vrng, style.favourite_illumination));
  attr.environment = vrng.Chance(style.outdoor_share) ? 1 : 0;
  int camera_quality = style.camera_quality;
  if (vrng.Chance(0.4f)) camera_quality += vrng.Chance(0.5f) ? 1 : -1;
  camera_quality = std::min(2, std::max(0, camera_quality));
  attr.camera_quality = static_cast<int8_t>(camera_quality);
  const Backdrop backdrop = MakeBackdrop(vrng, attr.environment);
  const SceneLight scene = IlluminationLight(attr.illumination);
  const float azimuth = style.light_azimuth + vrng.Uniform(-0.35f, 0.35f), elevation = vrng.Uniform(0.3f, 0.75f);
  const Light light = MakeLight(azimuth, elevation, scene.key, scene.ambient);
  const float strength = 0.1f + 0.9f * std::pow(vrng.Uniform(), 1.4f);
  const uint64_t picture_key = vrng.Key();
  const Rgb cloth = {vrng.Uniform(0.08f, 0.8f), vrng.Uniform(0.08f, 0.7f), vrng.Uniform(0.08f, 0.8f)};
  const float base_x = vrng.Uniform(0.44f, 0.56f), base_y = vrng.Uniform(0.4f, 0.48f);
  const float distance = vrng.Uniform(0.88f, 1.12f), roll = vrng.Uniform(-0.12f, 0.12f);
  const float gaze = vrng.Uniform(-0.4f, 0.4f);

  // Frame-level changes: a few pixels of motion, a flicker of brightness, new noise.
  Random frng(HashKeys({seed, kTagFrame, d, static_cast<uint64_t>(video), static_cast<uint64_t>(frame)}));
  const float jitter_x = frng.Uniform(-3.f, 3.f) * s / size, jitter_y = frng.Uniform(-3.f, 3.f) * s / size;
  const float jitter_r = frng.Uniform(-0.02f, 0.02f);
  const float flicker = frng.Uniform(0.96f, 1.04f);
  const float content_x = frng.Uniform(-3.f, 3.f) * s / size, content_y = frng.Uniform(-3.f, 3.f) * s / size;

  Random subject_rng(HashKeys({seed, kTagSubject, d, static_cast<uint64_t>(subject)}));
  const Appearance subject_app = MakeAppearance(subject_rng);
  const uint64_t subject_texture = subject_rng.Key();

  Canvas canvas(size, size);
  RenderBackdrop(canvas, backdrop, scene.background);
  const int type = attr.spoof_type;
  if (IsPrintAttack(type) || IsReplayAttack(type)) {
    // A print is static; a replayed video moves on its own.
    Random picture_rng(picture_key);
    const bool replay = IsReplayAttack(type);
    const Canvas picture =
        RenderVictimPicture(size, subject_app, picture_rng, replay ? content_x : 0.f, replay ? content_y : 0.f);
    if (replay) {
      RenderReplay(canvas, type, picture, strength, light, vrng, jitter_x, jitter_y, jitter_r);
    } else {
      RenderPrint(canvas, type, picture, strength, light, vrng, jitter_x, jitter_y, jitter_r);
    }
  } else {
    // Live: the subject. Mask: an unrelated wearer under the subject's mask.
    Random wearer_rng(picture_key);
    const Appearance wearer_app = type == 0 ? subject_app : MakeAppearance(wearer_rng);
    Person person{&wearer_app,
                  cloth,
                  MakePose(wearer_app, size, base_x + jitter_x, base_y + jitter_y, distance, roll + jitter_r, gaze),
                  light,
                  Detail{},
                  type == 0 ? subject_texture : wearer_rng.Key()};
    if (type == 0) {
      RenderPerson(canvas, person);
    } else {
      RenderMask(canvas, type, person, subject_app, strength, vrng);
    }
  }

  const float quality = Clamp01(style.quality + 0.3f * (camera_quality - style.camera_quality));
  Camera camera;
  camera.exposure = style.exposure * flicker;
  camera.gain = style.gain;
  camera.contrast = style.contrast;
  camera.blur_px = (0.25f + 1.5f * (1.f - quality)) * s;
  camera.noise_sigma = (0.006f + 0.03f * (1.f - quality)) * scene.noise_gain;
  camera.noise_key = frng.Key();
  sample.image = Develop(canvas, camera);
  return sample;
}

}  // namespace

SynthSample RenderSynthSample(const SynthOptions& options, int domain, int64_t index_in_domain) {
  ValidateOptions(options);
  IF_REQUIRE(domain >= 0 && domain < options.domains, "synth: domain must be in 0..", options.domains - 1,
             ", got ", domain);
  IF_REQUIRE(index_in_domain >= 0 && index_in_domain < options.per_domain, "synth: index_in_domain must be in 0..",
             options.per_domain - 1, ", got ", index_in_domain);
  return RenderSample(options, MakeDomainStyle(options, domain), domain, index_in_domain);
}

Manifest Synthesize(const SynthOptions& options) {
  ValidateOptions(options);
  IF_REQUIRE(!options.out.empty(), "synth: --out must name the store directory");
  StoreWriterOptions writer_options;
  writer_options.dir = options.out;
  writer_options.image_size = options.size;
  writer_options.jpeg_quality = options.jpeg_quality;
  writer_options.append = options.append;
  StoreWriter writer(writer_options);

  std::vector<DomainStyle> styles;
  std::vector<int> store_domain;
  for (int d = 0; d < options.domains; ++d) {
    styles.push_back(MakeDomainStyle(options, d));
    store_domain.push_back(writer.AddDomain(DomainName(d)));
  }

  struct Encoded {
    int domain = 0;
    std::string jpeg;
    SampleAttributes attributes;
  };
  const int64_t per_domain = options.per_domain;
  // Rendering runs on the workers; shard writes follow in sample order, so the
  // store's bytes do not depend on the thread count.
  Progress progress("synth", "images", options.domains * per_domain, options.progress);
  RunInOrder<Encoded>(
      options.domains * per_domain, options.threads, 4 * static_cast<int64_t>(options.threads) + 4,
      [&](int64_t i) {
        const int d = static_cast<int>(i / per_domain);
        SynthSample sample = RenderSample(options, styles[d], d, i % per_domain);
        return Encoded{d, EncodeJpeg(sample.image, styles[d].jpeg_quality), std::move(sample.attributes)};
      },
      [&](int64_t, const Encoded& encoded) {
        writer.Add(store_domain[encoded.domain], encoded.jpeg, encoded.attributes);
        progress.Advance();
      });
  progress.Finish();
  return writer.Commit();
}

}  // namespace instructflip
