// The generation loop shared by every backend: prefill, then one token per
// step (pick, timestamp, publish, check stop rules, decode), ending in a
// filled lmd_result. Runs on the stream's worker thread.
#pragma once

namespace lmdref {

class Engine;
class Stream;

// Never throws: failures become LMD_FINISH_ERROR with a detail message.
void run_generation(Engine& engine, Stream& stream) noexcept;

}  // namespace lmdref
