#include "probe.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define RK_PROBE_SSE2 1
#endif

#include "logprobs.h"
#include "threadpool.h"

namespace rk {

namespace {

constexpr int64_t kBlock = 1 << 17;  // words per parallel block: 1 MiB

// 64-byte aligned words, touched once (in parallel, so pages land where the readers run).
std::unique_ptr<uint64_t[]> touched(size_t words, uint64_t*& aligned) {
  std::unique_ptr<uint64_t[]> buf(new uint64_t[words + 8]);
  aligned = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(buf.get()) + 63) & ~uintptr_t(63));
  uint64_t* p = aligned;
  parallel_for(static_cast<int64_t>(words), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
  return buf;
}

void read_pass(const uint64_t* buf, size_t words, std::vector<uint64_t>& sink) {
  const int64_t nblocks = static_cast<int64_t>((words + kBlock - 1) / kBlock);
  parallel_for(nblocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const uint64_t* p = buf + k * kBlock;
      const int64_t n = std::min<int64_t>(kBlock, static_cast<int64_t>(words) - k * kBlock);
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      int64_t i = 0;
      for (; i + 4 <= n; i += 4) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
      }
      for (; i < n; ++i) a0 += p[i];
      sink[k] += a0 + a1 + a2 + a3;
    }
  });
}

void copy_pass(const uint64_t* src, uint64_t* dst, size_t words) {
  const int64_t nblocks = static_cast<int64_t>((words + kBlock - 1) / kBlock);
  parallel_for(nblocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const uint64_t* s = src + k * kBlock;
      uint64_t* d = dst + k * kBlock;
      const int64_t n = std::min<int64_t>(kBlock, static_cast<int64_t>(words) - k * kBlock);
#ifdef RK_PROBE_SSE2
      // blocks start 64-byte aligned (kBlock words from an aligned base); pairs of words
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        __m128i x0 = _mm_load_si128(reinterpret_cast<const __m128i*>(s + i));
        __m128i x1 = _mm_load_si128(reinterpret_cast<const __m128i*>(s + i + 2));
        __m128i x2 = _mm_load_si128(reinterpret_cast<const __m128i*>(s + i + 4));
        __m128i x3 = _mm_load_si128(reinterpret_cast<const __m128i*>(s + i + 6));
        _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), x0);
        _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 2), x1);
        _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 4), x2);
        _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 6), x3);
      }
      for (; i < n; ++i) d[i] = s[i];
      _mm_sfence();
#else
      std::memcpy(d, s, static_cast<size_t>(n) * 8);
#endif
    }
  });
}

}  // namespace

void bandwidth_samples(size_t bytes, int reps, BandwidthKind kind, double* out) {
  reps = std::max(1, reps);
  if (kind == BandwidthKind::kRead) {
    const size_t words = std::max<size_t>(bytes / 8, 1 << 16);
    uint64_t* buf = nullptr;
    auto hold = touched(words, buf);
    std::vector<uint64_t> sink((words + kBlock - 1) / kBlock);
    for (int rep = 0; rep < reps; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      read_pass(buf, words, sink);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      out[rep] = static_cast<double>(words * 8) / s / 1e9;
    }
    volatile uint64_t keep = 0;
    for (uint64_t x : sink) keep = keep + x;
    (void)keep;
  } else {
    const size_t words = std::max<size_t>(bytes / 16, 1 << 15);  // per buffer
    uint64_t *src = nullptr, *dst = nullptr;
    auto hold_src = touched(words, src);
    auto hold_dst = touched(words, dst);
    for (int rep = 0; rep < reps; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      copy_pass(src, dst, words);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      out[rep] = static_cast<double>(2 * words * 8) / s / 1e9;
    }
    volatile uint64_t keep = dst[words / 2];
    (void)keep;
  }
}

void exp_throughput_samples(int reps, double* out) {
  reps = std::max(1, reps);
  const int nt = get_num_threads();
  const int64_t chunk = detail::kLogprobsChunk, per = kExpProbeElements;
  // Logits like a language model's (spread over several units), the same in every thread's copy.
  std::vector<float> logits(static_cast<size_t>(nt) * per);
  for (int64_t i = 0; i < per; ++i) {
    const float x = 3.0f * static_cast<float>((i * 2654435761u) % 10007) / 10007.0f - 1.5f;
    for (int t = 0; t < nt; ++t) logits[static_cast<size_t>(t * per + i)] = 2.0f * x * x * x;
  }
  const detail::LogprobsKernels& k = detail::logprobs_kernels();
  const float a = 1.4426950408889634f;
  // Rounds per pass: about 10^7 elements per thread (a few ms), far above a pass's fixed cost.
  const int64_t rounds = 600;
  std::vector<float> sink(static_cast<size_t>(nt) * 2);
  auto pass = [&] {
    parallel_for(nt, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float* p = logits.data() + t * per;
        float m = 0.0f, s = 0.0f, acc = 0.0f;
        for (int64_t r = 0; r < rounds; ++r)
          for (int64_t c = 0; c < per; c += chunk) {
            k.stats(p + c, kF32, chunk, a, &m, &s, nullptr);
            acc += s;
          }
        sink[static_cast<size_t>(2 * t)] = m;
        sink[static_cast<size_t>(2 * t + 1)] = acc;
      }
    });
  };
  pass();  // warm: the pages, the caches, the threads
  for (int rep = 0; rep < reps; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    pass();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out[rep] = static_cast<double>(nt) * static_cast<double>(rounds * per) / sec / 1e9;
  }
  volatile float keep = sink[0] + sink[1];
  (void)keep;
}

double read_bandwidth_gbs(size_t bytes, int reps) {
  std::vector<double> r(static_cast<size_t>(std::max(1, reps)));
  bandwidth_samples(bytes, reps, BandwidthKind::kRead, r.data());
  return *std::max_element(r.begin(), r.end());
}

}  // namespace rk
