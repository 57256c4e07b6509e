package driver

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// entrySymbol is the one symbol lmdrive looks up in an engine library (a
// library may export others of its own, as the ref engine does).
const entrySymbol = "lmdrive_get_api"

// rtldNoDelete (Linux RTLD_NODELETE) keeps a library mapped after dlclose:
// engine runtimes keep thread pools and CUDA or MPI state alive past
// destroy, and unmapping their code under those threads crashes.
const rtldNoDelete = 0x1000

// Library is one engine library loaded into this process. It holds no
// package-level state: several libraries can be open at once.
type Library struct {
	path   string
	handle uintptr
	major  int
	minor  int

	nowNs   func() int64
	create  func(config string, out *uintptr, e *cError) int32
	info    func(eng uintptr, out *cInfo, e *cError) int32
	start   func(eng uintptr, req *cRequest, out *uintptr, e *cError) int32
	poll    func(s uintptr, toks *cToken, watch *float32, cap uint32, timeoutNs int64, out *cPoll, e *cError) int32
	cancel  func(s uintptr) int32
	result  func(s uintptr, out *cResult, e *cError) int32
	close   func(s uintptr)
	destroy func(eng uintptr)
	// startBatch is nil for an ABI 1.0 library.
	startBatch func(eng uintptr, n uint32, reqs **cRequest, out *uintptr, e *cError) int32
}

// OpenLibrary loads an engine library and checks its ABI version. Every
// failure is an error that names the file and what to do; nothing panics.
func OpenLibrary(path string) (*Library, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL|rtldNoDelete)
	if err != nil {
		return nil, fmt.Errorf("load engine library %s: %v (check that the file exists and `ldd %s` finds its dependencies)", path, err, path)
	}
	lib := &Library{path: path, handle: h}
	if err := lib.bind(); err != nil {
		purego.Dlclose(h)
		return nil, fmt.Errorf("load engine library %s: %w", path, err)
	}
	return lib, nil
}

func (l *Library) bind() error {
	sym, err := purego.Dlsym(l.handle, entrySymbol)
	if err != nil {
		return fmt.Errorf("it does not export %s, so it is not an lmdrive engine library (rebuild it against native/include/lmdrive.h)", entrySymbol)
	}
	var getAPI func() *cAPI
	purego.RegisterFunc(&getAPI, sym)
	api := getAPI()
	if api == nil {
		return fmt.Errorf("%s returned NULL", entrySymbol)
	}
	// Read the fixed header before trusting the rest of the table.
	l.major, l.minor = int(api.ABIMajor), int(api.ABIMinor)
	if l.major != ABIMajor {
		return fmt.Errorf("it implements lmdrive ABI %d.%d but this lmdrive speaks ABI %d.%d; rebuild the library from this lmdrive's sources (make native) or use a matching lmdrive",
			l.major, l.minor, ABIMajor, ABIMinor)
	}
	// An older minor version has a shorter table: read only what it has.
	need := unsafe.Sizeof(cAPI{})
	if l.minor == 0 {
		need = apiSize10
	}
	if uintptr(api.StructSize) < need {
		return fmt.Errorf("its function table is %d bytes, smaller than the %d bytes of ABI %d.%d", api.StructSize, need, l.major, l.minor)
	}
	funcs := []struct {
		name string
		ptr  uintptr
		fn   any
	}{
		{"now_ns", api.NowNs, &l.nowNs},
		{"create", api.Create, &l.create},
		{"info", api.Info, &l.info},
		{"start", api.Start, &l.start},
		{"poll", api.Poll, &l.poll},
		{"cancel", api.Cancel, &l.cancel},
		{"result", api.Result, &l.result},
		{"close", api.Close, &l.close},
		{"destroy", api.Destroy, &l.destroy},
	}
	for _, f := range funcs {
		if f.ptr == 0 {
			return fmt.Errorf("its function table has no %s", f.name)
		}
		purego.RegisterFunc(f.fn, f.ptr)
	}
	if l.minor >= 1 {
		if api.StartBatch == 0 {
			return fmt.Errorf("it implements ABI %d.%d but its function table has no start_batch", l.major, l.minor)
		}
		purego.RegisterFunc(&l.startBatch, api.StartBatch)
	}
	return nil
}

// Path is the file the library was loaded from.
func (l *Library) Path() string { return l.path }

// ABI is the library's "major.minor" ABI version.
func (l *Library) ABI() string { return fmt.Sprintf("%d.%d", l.major, l.minor) }

// Now reads the library's clock (CLOCK_MONOTONIC), the clock of every token time.
func (l *Library) Now() int64 { return l.nowNs() }

// Close unloads the library. Engines created from it must be closed first.
func (l *Library) Close() error {
	if l.handle == 0 {
		return nil
	}
	err := purego.Dlclose(l.handle)
	l.handle = 0
	return err
}

// EngineError is an error reported by an engine library through lmd_error.
type EngineError struct {
	Code    int
	Message string
}

func (e *EngineError) Error() string {
	names := map[int]string{codeInvalid: "invalid", codeUnsupported: "unsupported", codeEngine: "engine failure",
		codeBusy: "busy", codeNoMem: "out of memory", codeState: "bad call order"}
	name := names[e.Code]
	if name == "" {
		name = fmt.Sprintf("code %d", e.Code)
	}
	if e.Message == "" {
		return name
	}
	return e.Message + " (" + name + ")"
}

// ErrInvalid matches engine errors caused by bad input (LMD_ERR_INVALID).
var ErrInvalid = errors.New("invalid input")

// Is lets errors.Is(err, ErrInvalid) see through an EngineError.
func (e *EngineError) Is(target error) bool { return target == ErrInvalid && e.Code == codeInvalid }

func newCError() *cError { return &cError{StructSize: uint32(unsafe.Sizeof(cError{}))} }

func (c *cError) err(rc int32) error {
	if rc == codeOK {
		return nil
	}
	return &EngineError{Code: int(rc), Message: cstring(c.Message[:])}
}

// keepAlive is runtime.KeepAlive for several values: Go memory handed to C
// must stay reachable until the call returns.
func keepAlive(vs ...any) {
	for _, v := range vs {
		runtime.KeepAlive(v)
	}
}

// LibraryReport describes one engine's library as `lmdrive engines` shows it.
type LibraryReport struct {
	Engine  string `json:"engine"`
	Library string `json:"library,omitempty"`
	ABI     string `json:"abi,omitempty"`
	Backend string `json:"backend,omitempty"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Inspect finds and opens an engine's library and asks it to describe itself
// (info with no engine), without creating an engine.
func Inspect(engine string, s Search) LibraryReport {
	r := LibraryReport{Engine: engine}
	path, err := s.Find(engine, FileExists)
	if err != nil {
		r.Error = "not found"
		return r
	}
	r.Library = path
	if _, err := s.Locate(engine); err != nil {
		r.Error = err.Error()
		return r
	}
	r.Library = path
	lib, err := OpenLibrary(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer lib.Close()
	r.ABI = lib.ABI()
	ci := cInfo{StructSize: uint32(unsafe.Sizeof(cInfo{}))}
	e := newCError()
	if err := e.err(lib.info(0, &ci, e)); err != nil {
		r.Error = "describe library: " + err.Error()
		return r
	}
	r.Backend, r.Version = cstring(ci.Backend[:]), cstring(ci.Version[:])
	return r
}
