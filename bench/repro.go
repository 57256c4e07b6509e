package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/lmdrive/lmdrive/cuda"
)

// Repro is what it takes to reproduce a measurement besides the workload:
// the software and settings around the engine. GPU facts come from the cuda
// package where a GPU is used.
type Repro struct {
	GoVersion string            `json:"go_version"`
	Kernel    string            `json:"kernel,omitempty"`
	CPU       string            `json:"cpu,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Files     []FileHash        `json:"files,omitempty"`
	GPU       *cuda.Inventory   `json:"gpu,omitempty"`
	// Libraries are the system libraries engines load (CUDA driver API,
	// NCCL) with the versions they report, where present.
	Libraries []cuda.LibraryProbe `json:"libraries,omitempty"`
}

// FileHash fingerprints one input file. Files up to 64 MiB are hashed whole;
// larger ones (weights) by their size and their first and last 16 MiB,
// which tells checkpoints apart without reading tens of gigabytes.
type FileHash struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Whole  bool   `json:"whole"`
}

// envPrefixes select the environment variables that change what kernels or
// libraries do.
var envPrefixes = []string{"CUDA_", "NCCL_", "CUBLAS", "CUDNN_", "OMP_", "MKL_", "OPENBLAS_", "GOMAXPROCS",
	"LD_LIBRARY_PATH", "LMDRIVE_", "TRTLLM_", "TM_", "PYTORCH_", "TORCH_", "VLLM_", "LMDEPLOY_", "NVIDIA_"}

// CollectRepro gathers the reproducibility block; hashes cover the given paths
// (a file, or a folder whose regular files are all fingerprinted).
func CollectRepro(paths ...string) (Repro, error) {
	r := Repro{GoVersion: runtime.Version(), Env: map[string]string{}}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Kernel = strings.TrimSpace(string(b))
	}
	r.CPU = cpuModel()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		for _, p := range envPrefixes {
			if strings.HasPrefix(k, p) {
				r.Env[k] = v
			}
		}
	}
	for _, p := range paths {
		if p == "" || strings.HasPrefix(p, "random:") {
			continue
		}
		hashes, err := hashPath(p)
		if err != nil {
			return r, err
		}
		r.Files = append(r.Files, hashes...)
	}
	return r, nil
}

func hashPath(p string) ([]FileHash, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s: %w", p, err)
	}
	if !st.IsDir() {
		h, err := FingerprintFile(p)
		return []FileHash{h}, err
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s: %w", p, err)
	}
	var out []FileHash
	for _, e := range entries {
		if e.Type().IsRegular() {
			h, err := FingerprintFile(filepath.Join(p, e.Name()))
			if err != nil {
				return nil, err
			}
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

const wholeLimit, edge = 64 << 20, 16 << 20

// FingerprintFile hashes a file as FileHash describes.
func FingerprintFile(path string) (FileHash, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileHash{}, fmt.Errorf("fingerprint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return FileHash{}, fmt.Errorf("fingerprint: %w", err)
	}
	h := sha256.New()
	fh := FileHash{Path: path, Size: st.Size(), Whole: st.Size() <= wholeLimit}
	if fh.Whole {
		_, err = io.Copy(h, f)
	} else {
		fmt.Fprintf(h, "size=%d;", st.Size())
		if _, err = io.Copy(h, io.NewSectionReader(f, 0, edge)); err == nil {
			_, err = io.Copy(h, io.NewSectionReader(f, st.Size()-edge, edge))
		}
	}
	if err != nil {
		return FileHash{}, fmt.Errorf("fingerprint %s: %w", path, err)
	}
	fh.SHA256 = hex.EncodeToString(h.Sum(nil))
	return fh, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
