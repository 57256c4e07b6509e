//go:build !cgo

package doctor

// cgoBuild: this binary can reach NVML (go-nvml needs cgo).
const cgoBuild = false
