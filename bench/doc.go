// Package bench runs workloads against an engine and turns what the engine
// reported into measurements: the repeat loop (warmup, repeats), metric
// definitions, statistics, durable JSON Lines records and the digest-shaped
// report.
//
// Definitions (every time comes from the engine library's CLOCK_MONOTONIC,
// taken in native code; lmdrive itself never times tokens):
//
//	load          engine create → ready, measured once per engine
//	TTFT          submit → first token observed (prefill)
//	decode        first token → last token
//	runtime       submit → last token (the seed digest's "Runtime")
//	with load     runtime + load
//	tok/s         output tokens / runtime (the seed digest's "Tok/s")
//	decode tok/s  (output tokens − 1) / decode
//	ITL           gaps between consecutive observations (tokens that became
//	              visible together form one observation); p50/p90/p99/max,
//	              with the mean tokens per observation beside them
package bench
