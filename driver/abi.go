package driver

// Go mirrors of the structs in native/include/lmdrive.h. Field order, types
// and explicit reserved fields match the header byte for byte; layout_test.go
// compiles a C program that prints the header's sizes and offsets and checks
// them against these.

import "unsafe"

// ABI version this build of lmdrive speaks.
const (
	ABIMajor = 1
	ABIMinor = 1
)

const maxIDs = 32 // LMD_MAX_IDS

// Return codes (LMD_OK, LMD_ERR_*).
const (
	codeOK          = 0
	codeInvalid     = 1
	codeUnsupported = 2
	codeEngine      = 3
	codeBusy        = 4
	codeNoMem       = 5
	codeState       = 6
)

// Capability bits (LMD_CAP_*).
const (
	CapLogprobs     = 1 << 0
	CapWatch        = 1 << 1
	CapDeviceTiming = 1 << 2
	CapEngineTiming = 1 << 3
	CapSampling     = 1 << 4
)

// Batching bits of lmd_info.batch_flags (LMD_BATCH_*, ABI 1.1).
const (
	BatchJoin           = 1 << 0
	BatchChunkedPrefill = 1 << 1
)

type cError struct {
	StructSize uint32
	Code       int32
	Message    [1016]byte
}

type cInfo struct {
	StructSize  uint32
	VocabSize   uint32
	Backend     [32]byte
	Version     [64]byte
	Model       [128]byte
	Dtype       [16]byte
	TPSize      uint32
	NDevices    uint32
	DeviceIDs   [16]int32
	NEOS        uint32
	EOSIDs      [maxIDs]int32
	MaxSeqLen   uint32
	MaxInputLen uint32
	Caps        uint32
	Reserved    uint32
	// ABI 1.1.
	MaxSequences  uint32
	BatchFlags    uint32
	MaxStepTokens uint32
	Reserved2     uint32
}

type cRequest struct {
	StructSize   uint32
	NPrompt      uint32
	Prompt       *int32
	MaxNew       uint32
	MinNew       uint32
	IgnoreEOS    uint32
	NStop        uint32
	StopTokens   *int32
	StopEnds     *uint32
	NWatch       uint32
	TopK         uint32
	WatchIDs     *int32
	Temperature  float32
	TopP         float32
	Seed         uint64
	WantLogprobs uint32
	Reserved     uint32
}

type cToken struct {
	ID      int32
	Index   uint32
	TNs     int64
	Logprob float32
	Bundle  uint32
}

type cPoll struct {
	StructSize uint32
	N          uint32
	Done       uint32
	Reserved   uint32
}

type cResult struct {
	StructSize         uint32
	FinishReason       int32
	RawStatus          int32
	PromptTokens       uint32
	OutputTokens       uint32
	CachedPromptTokens int32
	MaxNewRequested    uint32
	MaxNewEffective    uint32
	StopToken          int32
	StopSequence       int32
	TSubmitNs          int64
	TFirstNs           int64
	TLastNs            int64
	TDoneNs            int64
	DevicePrefillNs    int64
	DeviceDecodeNs     int64
	EngineFirstNs      int64
	EngineLastNs       int64
	IgnoreEOSApplied   uint32
	NStopIDs           uint32
	StopIDs            [maxIDs]int32
	RawStatusText      [64]byte
	LimitSource        [128]byte
	Detail             [256]byte
	// ABI 1.1.
	TScheduledNs int64
	MeanBatch    float32
	MaxBatch     uint32
}

// cAPI mirrors lmd_api: a header, then C function pointers.
type cAPI struct {
	StructSize uint32
	ABIMajor   uint32
	ABIMinor   uint32
	Reserved   uint32
	NowNs      uintptr
	Create     uintptr
	Info       uintptr
	Start      uintptr
	Poll       uintptr
	Cancel     uintptr
	Result     uintptr
	Close      uintptr
	Destroy    uintptr
	// ABI 1.1.
	StartBatch uintptr
}

// apiSize10 is the size of an ABI 1.0 function table: a 1.0 library's table
// ends there, and nothing past it may be read.
const apiSize10 = unsafe.Offsetof(cAPI{}.StartBatch)

// cstring returns the NUL-terminated prefix of a fixed C char array.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
