// Portable builds target baseline x86-64; hot loops are compiled a second and
// third time for x86-64-v3 (AVX2+FMA) and x86-64-v4 (AVX-512), picked at load
// time, so the library runs anywhere yet uses the wide units where they exist.
#pragma once

// Not under ThreadSanitizer: its runtime is not ready when ifunc resolvers run.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && \
    !defined(__SANITIZE_THREAD__)
#define LMDREF_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LMDREF_MULTIVERSION
#endif

#define LMDREF_INLINE inline __attribute__((always_inline))

namespace lmdref {

// 16 floats: one packed-weight row; the compiler splits it to the target's width.
typedef float f32x16 __attribute__((vector_size(64)));

}  // namespace lmdref
