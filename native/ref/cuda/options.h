// The CUDA backend's switches, in one struct read once when an engine is
// created. Each switch keeps an earlier or simpler path of one piece of the
// computation for A/B runs and for the parity check (parity.py runs every
// switch's other value against transformers); the defaults are the measured
// fastest paths. No CUDA types here, so the parser is tested on the CPU.
#pragma once

#include <string>

namespace lmdcu {

struct Options {
  // LMDREF_CUDA_GRAPH=0: the decode step's kernels launched one by one
  // instead of replaying one CUDA graph.
  bool graph = true;
  // LMDREF_CUDA_DECODE=cublas: decode through the prefill's cuBLAS GEMMs and
  // element-wise kernels instead of the fused matrix-vector kernels.
  bool gemv_decode = true;
  // LMDREF_CUDA_AR=nccl: NCCL for the decode all-reduces too, instead of the
  // peer-access kernel fused with the residual add and RMSNorm (tp > 1).
  bool peer_allreduce = true;
  // LMDREF_CUDA_PDL=0: kernels launched without programmatic dependent
  // launch (early start) on sm_90.
  bool early_start = true;
  // LMDREF_CUDA_CHOICE=host: the greedy choice made on the host from the
  // copied logits row instead of on the GPUs.
  bool device_choice = true;
  // LMDREF_CUDA_GEMV=stream: the one-token projections on one GPU through
  // the persistent streaming kernels with the RMSNorm and the residual add
  // fused in, instead of one row pair per warp with separate RMSNorm
  // kernels. Off by default: an H200 A/B (2026-12-03, docs/benchmarks.md)
  // measured it slower (100.8 against 119.1 tok/s at 14B).
  bool warp_gemv = true;
  // LMDREF_CUDA_COMBINE=merged: the decode attention kernel's last block per
  // kv head merges the split-KV parts, instead of a kernel of its own. Off by
  // default: measured slower in the same A/B (109.7 against 119.1 tok/s).
  bool separate_combine = true;
  // LMDREF_CUDA_AHEAD=0: a greedy decode step on one GPU is launched when
  // the generation loop asks for it, instead of being queued (with the
  // token the GPU chose) before the previous token is handed over.
  bool launch_ahead = true;
  // LMDREF_CUDA_PREFILL_ATTN=mma: the mma.sync prefill attention on every
  // GPU, instead of the Hopper kernel (wgmma, TMA, warp specialisation) on
  // sm_90 GPUs with 128-dim heads. The Hopper kernel passed its checks on an
  // H200 (2026-12-03) and took 107 ms against 169 ms for the 14B 10k prefill's
  // attention (docs/benchmarks.md); sm_80 and other head sizes run mma.sync.
  bool wgmma_prefill = true;
};

// Reads the LMDREF_CUDA_* variables of env (a NULL-terminated array of
// "NAME=value" strings, as environ). Throws lmdrive::AbiError
// (LMD_ERR_INVALID) naming the variable for an unknown LMDREF_CUDA_* name or
// value, so a mistyped switch never runs the default silently.
Options read_options(const char* const* env);

// The switches that differ from the defaults, as "LMDREF_CUDA_PDL=0 …";
// empty for the defaults.
std::string changed_switches(const Options& o);

// Every switch with its values, default first: "LMDREF_CUDA_GRAPH=1|0, …".
std::string switch_list();

}  // namespace lmdcu
