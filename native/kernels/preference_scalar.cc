// The preference hot loop built for scalar (see preference_simd.inl).
#include "preference_simd.inl"
