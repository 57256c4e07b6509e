// Package cuda describes the NVIDIA GPUs of a host and records their
// telemetry while a benchmark runs.
//
// Everything here talks to the GPUs through the Telemetry interface, which
// returns plain Go values and errors. The NVML implementation lives in the
// cuda/nvml subpackage; it needs cgo, and a build without cgo gets a
// constructor that explains what is missing. Keeping NVML behind an interface
// lets this package stay free of cgo, and lets tests use fakes.
//
// Three things are built on top of Telemetry:
//
//   - ReadInventory: names, identifiers, memory, clocks, power limits, modes,
//     PCIe links and the NVLink/P2P topology between every pair of GPUs
//     (what `lmdrive gpus` prints).
//   - Sampler: a goroutine that reads power, the energy counter, memory,
//     clocks, utilization, temperature and throttle reasons of a set of GPUs
//     at a fixed interval, with CLOCK_MONOTONIC timestamps comparable to the
//     token timestamps engines report.
//   - PhaseEnergy: energy and mean power per GPU for the prefill and decode
//     phases of one generation, plus peak memory, computed from the samples.
//
// A reading that a GPU or driver does not support is a Maybe with Valid
// false: it prints as "n/a" and is null in JSON. It is never an error.
package cuda
