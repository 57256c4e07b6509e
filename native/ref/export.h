// Marks the library's public symbols; everything else is built hidden.
#pragma once

#define LMDREF_EXPORT __attribute__((visibility("default")))
