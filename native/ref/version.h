// The reference engine's version, reported by info() as "lmdrive-ref <version>".
#pragma once

#define LMDRIVE_REF_VERSION "0.1.0"
