package driver

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestLayoutMatchesHeader compiles a C program that prints the header's
// struct sizes and field offsets, and compares them with the Go mirrors:
// a silent layout mismatch would corrupt memory on every call.
func TestLayoutMatchesHeader(t *testing.T) {
	cc := cCompiler(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "layout.c")
	prog := `#include <stddef.h>
#include <stdio.h>
#include "lmdrive.h"
#define S(T) printf(#T " size %zu\n", sizeof(T));
#define O(T, f) printf(#T "." #f " %zu\n", offsetof(T, f));
int main(void) {
  S(lmd_error) O(lmd_error, message)
  S(lmd_info) O(lmd_info, backend) O(lmd_info, tp_size) O(lmd_info, eos_ids) O(lmd_info, caps)
  O(lmd_info, max_sequences) O(lmd_info, batch_flags) O(lmd_info, max_step_tokens)
  S(lmd_request) O(lmd_request, prompt) O(lmd_request, stop_tokens) O(lmd_request, stop_ends) O(lmd_request, watch_ids) O(lmd_request, temperature) O(lmd_request, seed) O(lmd_request, want_logprobs)
  S(lmd_token) O(lmd_token, t_ns) O(lmd_token, logprob) O(lmd_token, bundle)
  S(lmd_poll) O(lmd_poll, done)
  S(lmd_result) O(lmd_result, t_submit_ns) O(lmd_result, engine_last_ns) O(lmd_result, stop_ids) O(lmd_result, raw_status_text) O(lmd_result, limit_source) O(lmd_result, detail)
  O(lmd_result, t_scheduled_ns) O(lmd_result, mean_batch) O(lmd_result, max_batch)
  S(lmd_api) O(lmd_api, now_ns) O(lmd_api, destroy) O(lmd_api, start_batch)
  printf("LMD_BATCH_JOIN %d\n", (int)LMD_BATCH_JOIN); printf("LMD_BATCH_CHUNKED_PREFILL %d\n", (int)LMD_BATCH_CHUNKED_PREFILL);
  printf("LMDRIVE_ABI %d\n", LMDRIVE_ABI_MAJOR * 100 + LMDRIVE_ABI_MINOR);
  return 0;
}
`
	if err := writeFile(src, prog); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "layout")
	if b, err := exec.Command(cc, "-I", filepath.Join("..", "native", "include"), "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compile layout probe: %v\n%s", err, b)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]uintptr{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		n, _ := strconv.Atoi(f[len(f)-1])
		c[strings.Join(f[:len(f)-1], " ")] = uintptr(n)
	}
	var (
		e  cError
		i  cInfo
		r  cRequest
		tk cToken
		p  cPoll
		rs cResult
		a  cAPI
	)
	want := map[string]uintptr{
		"lmd_error size": unsafe.Sizeof(e), "lmd_error.message": unsafe.Offsetof(e.Message),
		"lmd_info size": unsafe.Sizeof(i), "lmd_info.backend": unsafe.Offsetof(i.Backend), "lmd_info.tp_size": unsafe.Offsetof(i.TPSize),
		"lmd_info.eos_ids": unsafe.Offsetof(i.EOSIDs), "lmd_info.caps": unsafe.Offsetof(i.Caps),
		"lmd_info.max_sequences": unsafe.Offsetof(i.MaxSequences), "lmd_info.batch_flags": unsafe.Offsetof(i.BatchFlags),
		"lmd_info.max_step_tokens": unsafe.Offsetof(i.MaxStepTokens),
		"lmd_request size":         unsafe.Sizeof(r), "lmd_request.prompt": unsafe.Offsetof(r.Prompt), "lmd_request.stop_tokens": unsafe.Offsetof(r.StopTokens),
		"lmd_request.stop_ends": unsafe.Offsetof(r.StopEnds), "lmd_request.watch_ids": unsafe.Offsetof(r.WatchIDs),
		"lmd_request.temperature": unsafe.Offsetof(r.Temperature), "lmd_request.seed": unsafe.Offsetof(r.Seed),
		"lmd_request.want_logprobs": unsafe.Offsetof(r.WantLogprobs),
		"lmd_token size":            unsafe.Sizeof(tk), "lmd_token.t_ns": unsafe.Offsetof(tk.TNs), "lmd_token.logprob": unsafe.Offsetof(tk.Logprob),
		"lmd_token.bundle": unsafe.Offsetof(tk.Bundle),
		"lmd_poll size":    unsafe.Sizeof(p), "lmd_poll.done": unsafe.Offsetof(p.Done),
		"lmd_result size": unsafe.Sizeof(rs), "lmd_result.t_submit_ns": unsafe.Offsetof(rs.TSubmitNs), "lmd_result.engine_last_ns": unsafe.Offsetof(rs.EngineLastNs),
		"lmd_result.stop_ids": unsafe.Offsetof(rs.StopIDs), "lmd_result.raw_status_text": unsafe.Offsetof(rs.RawStatusText),
		"lmd_result.limit_source": unsafe.Offsetof(rs.LimitSource), "lmd_result.detail": unsafe.Offsetof(rs.Detail),
		"lmd_result.t_scheduled_ns": unsafe.Offsetof(rs.TScheduledNs), "lmd_result.mean_batch": unsafe.Offsetof(rs.MeanBatch),
		"lmd_result.max_batch": unsafe.Offsetof(rs.MaxBatch),
		"lmd_api size":         unsafe.Sizeof(a), "lmd_api.now_ns": unsafe.Offsetof(a.NowNs), "lmd_api.destroy": unsafe.Offsetof(a.Destroy),
		"lmd_api.start_batch": unsafe.Offsetof(a.StartBatch),
		"LMD_BATCH_JOIN":      BatchJoin, "LMD_BATCH_CHUNKED_PREFILL": BatchChunkedPrefill, "LMDRIVE_ABI": ABIMajor*100 + ABIMinor,
	}
	if len(c) != len(want) {
		t.Fatalf("probe printed %d facts, test knows %d", len(c), len(want))
	}
	for k, w := range want {
		if got, ok := c[k]; !ok || got != w {
			t.Errorf("%s: C says %d, Go mirror says %d", k, got, w)
		}
	}
}
