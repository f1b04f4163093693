// CPU feature detection and the run-time SIMD level shared by every kernel family.
// Shipped binaries are built without -march=native; each family compiles its hot loops three times
// (<family>_avx512.cc, <family>_avx2.cc, <family>_scalar.cc) and picks one with active_isa().
#pragma once

namespace rk {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// The best level this CPU supports (AVX-512 needs F+BW+DQ+VL; AVX2 needs AVX2+FMA+F16C).
Isa detected_isa();
// The level kernels use now: detected_isa(), lowered by the RK_SIMD environment variable
// (scalar | avx2 | avx512) or by set_isa().
Isa active_isa();
// Lowers (or restores) the level. Returns false, changing nothing, when the CPU lacks `isa`.
bool set_isa(Isa isa);
const char* isa_name(Isa isa);

}  // namespace rk
