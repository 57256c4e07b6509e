// Package nvml implements cuda.Telemetry over NVIDIA's management library
// (libnvidia-ml, which ships with the driver) through
// github.com/NVIDIA/go-nvml.
//
// go-nvml needs cgo, although not the driver, to build. In a build without
// cgo, Open returns an error that says so; nothing else in lmdrive depends on
// cgo for GPU telemetry. The library is opened at run time, so a binary built
// here runs on hosts without a GPU and reports what is missing.
package nvml
