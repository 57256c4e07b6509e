//go:build cgo

package nvml

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/dl"
	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/lmdrive/lmdrive/cuda"
)

// Open loads the driver's NVML library (DefaultLibrary, found by the dynamic
// linker), initializes it and returns it as cuda.Telemetry. Close it when
// done. Errors that mean NVML cannot be used here match cuda.ErrUnavailable.
func Open() (cuda.Telemetry, error) { return OpenLibrary(DefaultLibrary) }

// OpenLibrary is Open with an explicit library name or path.
func OpenLibrary(path string) (cuda.Telemetry, error) {
	// go-nvml reduces every load failure to ERROR_LIBRARY_NOT_FOUND; open
	// the library once ourselves first to keep the dynamic linker's reason.
	probe := dl.New(path, dl.RTLD_LAZY|dl.RTLD_GLOBAL)
	if err := probe.Open(); err != nil {
		return nil, libraryError(path, err)
	}
	// go-nvml opens its own reference; the probe's only purpose was the
	// error text, and failing to drop it changes nothing for the caller.
	defer func() { _ = probe.Close() }()

	lib := gonvml.New(gonvml.WithLibraryPath(path))
	if ret := lib.Init(); ret != gonvml.SUCCESS {
		return nil, initError(path, ret)
	}
	t, err := newTelemetry(lib)
	if err != nil {
		if ret := lib.Shutdown(); ret != gonvml.SUCCESS {
			return nil, errors.Join(err, fmt.Errorf("nvml: shutdown: %w", ret))
		}
		return nil, err
	}
	return t, nil
}

// initError explains why nvmlInit failed after the library loaded.
func initError(path string, ret gonvml.Return) error {
	var hint string
	switch ret {
	case gonvml.ERROR_DRIVER_NOT_LOADED:
		hint = "the NVIDIA kernel driver is not loaded: load it (modprobe nvidia) or reinstall the driver; " +
			"nvidia-smi will report the same"
	case gonvml.ERROR_LIB_RM_VERSION_MISMATCH:
		hint = "the NVML library and the loaded NVIDIA kernel module come from different driver versions, " +
			"usually after a driver upgrade without a reboot: reboot, or reload the nvidia kernel modules"
	case gonvml.ERROR_NO_PERMISSION:
		hint = "no permission to open the NVIDIA device files (/dev/nvidia*): run as a user allowed to, " +
			"or in a container, pass the devices in"
	case gonvml.ERROR_LIBRARY_NOT_FOUND:
		return libraryError(path, ret)
	default:
		return fmt.Errorf("nvml: initialize %s: %w", path, ret)
	}
	return cuda.Unavailable(fmt.Sprintf("cannot initialize NVML (%s): %v\n%s", path, ret, hint), ret)
}

// telemetry implements cuda.Telemetry over a go-nvml library (the real one or
// one of go-nvml's mock servers in tests).
type telemetry struct {
	lib     gonvml.Interface
	devices []gonvml.Device
	has     symbols
	closed  atomic.Bool
}

// symbols records which of the entry points that not every driver exports
// this one has. Calling a missing one would end the process (the dynamic
// linker aborts on an unresolved symbol), so each is looked up once at open.
type symbols struct {
	cudaDriverVersion bool // nvmlSystemGetCudaDriverVersion
	migMode           bool // nvmlDeviceGetMigMode (R450)
	remoteType        bool // nvmlDeviceGetNvLinkRemoteDeviceType
	energyCounter     bool // nvmlDeviceGetTotalEnergyConsumption (Volta, R410)
	fieldValues       bool // nvmlDeviceGetFieldValues
	samples           bool // nvmlDeviceGetSamples
	eventReasons      bool // nvmlDeviceGetCurrentClocksEventReasons (R535)
	// Deprecated in NVML 13.0 and so candidates for removal:
	throttleReasons   bool // nvmlDeviceGetCurrentClocksThrottleReasons
	applicationsClock bool // nvmlDeviceGetApplicationsClock
	temperature       bool // nvmlDeviceGetTemperature
}

func lookupSymbols(lib gonvml.Interface) symbols {
	has := func(symbol string) bool { return lib.Extensions().LookupSymbol(symbol) == nil }
	return symbols{
		cudaDriverVersion: has("nvmlSystemGetCudaDriverVersion"),
		migMode:           has("nvmlDeviceGetMigMode"),
		remoteType:        has("nvmlDeviceGetNvLinkRemoteDeviceType"),
		energyCounter:     has("nvmlDeviceGetTotalEnergyConsumption"),
		fieldValues:       has("nvmlDeviceGetFieldValues"),
		samples:           has("nvmlDeviceGetSamples"),
		eventReasons:      has("nvmlDeviceGetCurrentClocksEventReasons"),
		throttleReasons:   has("nvmlDeviceGetCurrentClocksThrottleReasons"),
		applicationsClock: has("nvmlDeviceGetApplicationsClock"),
		temperature:       has("nvmlDeviceGetTemperature"),
	}
}

var _ cuda.Telemetry = (*telemetry)(nil)

// newTelemetry takes an initialized library and finds its devices.
func newTelemetry(lib gonvml.Interface) (*telemetry, error) {
	n, ret := lib.DeviceGetCount()
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("nvml: count GPUs: %w", ret)
	}
	t := &telemetry{lib: lib, devices: make([]gonvml.Device, n)}
	for i := range n {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != gonvml.SUCCESS {
			return nil, fmt.Errorf("nvml: open GPU %d of %d: %w", i, n, ret)
		}
		t.devices[i] = d
	}
	t.has = lookupSymbols(lib)
	return t, nil
}

var errClosed = errors.New("nvml: telemetry is closed")

func (t *telemetry) device(index int) (gonvml.Device, error) {
	if t.closed.Load() {
		return nil, errClosed
	}
	if err := cuda.CheckIndex(index, len(t.devices)); err != nil {
		return nil, fmt.Errorf("nvml: %w", err)
	}
	return t.devices[index], nil
}

func (t *telemetry) DeviceCount() int { return len(t.devices) }

func (t *telemetry) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	if ret := t.lib.Shutdown(); ret != gonvml.SUCCESS {
		return fmt.Errorf("nvml: shutdown: %w", ret)
	}
	return nil
}

func (t *telemetry) System() (cuda.System, error) {
	if t.closed.Load() {
		return cuda.System{}, errClosed
	}
	var s cuda.System
	var p problems
	driver, ret := t.lib.SystemGetDriverVersion()
	s.DriverVersion = maybe(driver, ret, "driver version", &p)
	nvmlVersion, ret := t.lib.SystemGetNVMLVersion()
	s.NVMLVersion = maybe(nvmlVersion, ret, "NVML version", &p)
	if t.has.cudaDriverVersion {
		v, ret := t.lib.SystemGetCudaDriverVersion()
		s.CUDADriverVersion = maybe(cuda.CUDAVersionString(v), ret, "CUDA driver version", &p)
	}
	s.Problems = p
	return s, nil
}

func (t *telemetry) Device(index int) (cuda.Device, error) {
	d, err := t.device(index)
	if err != nil {
		return cuda.Device{}, err
	}
	name, ret := d.GetName()
	if ret != gonvml.SUCCESS {
		return cuda.Device{}, fmt.Errorf("nvml: GPU %d: name: %w", index, ret)
	}
	uuid, ret := d.GetUUID()
	if ret != gonvml.SUCCESS {
		return cuda.Device{}, fmt.Errorf("nvml: GPU %d: UUID: %w", index, ret)
	}
	out := cuda.Device{Index: index, Name: name, UUID: uuid}
	var p problems

	pci, ret := d.GetPciInfo()
	if out.PCIBusID = maybe(busID(pci), ret, "PCI info", &p); out.PCIBusID.Value == "" {
		out.PCIBusID = cuda.Maybe[string]{}
	}
	major, minor, ret := d.GetCudaComputeCapability()
	out.ComputeCapability = maybe(fmt.Sprintf("%d.%d", major, minor), ret, "compute capability", &p)

	mem, ret := d.GetMemoryInfo()
	out.MemoryTotalBytes = maybe(mem.Total, ret, "memory", &p)
	out.MemoryUsedBytes = maybe(mem.Used, ret, "memory", &p)

	out.SMClock = t.clocks(d, gonvml.CLOCK_SM, "SM clock", &p)
	out.MemoryClock = t.clocks(d, gonvml.CLOCK_MEM, "memory clock", &p)

	limit, ret := d.GetPowerManagementLimit()
	out.PowerLimitMW = maybe(limit, ret, "power limit", &p)
	limit, ret = d.GetPowerManagementDefaultLimit()
	out.PowerDefaultLimitMW = maybe(limit, ret, "default power limit", &p)
	limit, ret = d.GetEnforcedPowerLimit()
	out.PowerEnforcedLimitMW = maybe(limit, ret, "enforced power limit", &p)

	eccNow, eccPending, ret := d.GetEccMode()
	out.ECC = cuda.Mode{
		Current: maybe(eccNow == gonvml.FEATURE_ENABLED, ret, "ECC mode", &p),
		Pending: maybe(eccPending == gonvml.FEATURE_ENABLED, ret, "", &p),
	}
	if t.has.migMode {
		migNow, migPending, ret := d.GetMigMode()
		out.MIG = cuda.Mode{
			Current: maybe(migNow == gonvml.DEVICE_MIG_ENABLE, ret, "MIG mode", &p),
			Pending: maybe(migPending == gonvml.DEVICE_MIG_ENABLE, ret, "", &p),
		}
	}
	persistence, ret := d.GetPersistenceMode()
	out.Persistence = maybe(persistence == gonvml.FEATURE_ENABLED, ret, "persistence mode", &p)

	gen, ret := d.GetCurrPcieLinkGeneration()
	out.PCIeCurrent.Gen = maybe(gen, ret, "PCIe generation", &p)
	width, ret := d.GetCurrPcieLinkWidth()
	out.PCIeCurrent.Width = maybe(width, ret, "PCIe width", &p)
	gen, ret = d.GetMaxPcieLinkGeneration()
	out.PCIeMax.Gen = maybe(gen, ret, "maximum PCIe generation", &p)
	width, ret = d.GetMaxPcieLinkWidth()
	out.PCIeMax.Width = maybe(width, ret, "maximum PCIe width", &p)

	out.Problems = p
	return out, nil
}

func (t *telemetry) clocks(d gonvml.Device, clock gonvml.ClockType, what string, p *problems) cuda.Clocks {
	cur, ret := d.GetClockInfo(clock)
	var c cuda.Clocks
	c.CurrentMHz = maybe(cur, ret, what, p)
	highest, ret := d.GetMaxClockInfo(clock)
	c.MaxMHz = maybe(highest, ret, "maximum "+what, p)
	if t.has.applicationsClock {
		app, ret := d.GetApplicationsClock(clock)
		c.ApplicationMHz = maybe(app, ret, "application "+what, p)
	}
	return c
}

func (t *telemetry) NVLinks(index int) ([]cuda.NVLink, error) {
	d, err := t.device(index)
	if err != nil {
		return nil, err
	}
	var links []cuda.NVLink
	for link := range gonvml.NVLINK_MAX_LINKS {
		state, ret := d.GetNvLinkState(link)
		if ret != gonvml.SUCCESS || state != gonvml.FEATURE_ENABLED {
			continue // no such link, or not up
		}
		pci, ret := d.GetNvLinkRemotePciInfo(link)
		if ret != gonvml.SUCCESS {
			return nil, fmt.Errorf("nvml: GPU %d: far end of NVLink %d: %w", index, link, ret)
		}
		l := cuda.NVLink{Link: link, RemoteBusID: busID(pci), Remote: t.remoteOf(d, link, busID(pci))}
		links = append(links, l)
	}
	return links, nil
}

// remoteOf says what is at the far end of an NVLink: from the driver where it
// can tell, else a GPU if the bus ID is one of ours.
func (t *telemetry) remoteOf(d gonvml.Device, link int, bus string) cuda.NVLinkRemote {
	if t.has.remoteType {
		typ, ret := d.GetNvLinkRemoteDeviceType(link)
		if ret == gonvml.SUCCESS {
			switch typ {
			case gonvml.NVLINK_DEVICE_TYPE_GPU:
				return cuda.RemoteGPU
			case gonvml.NVLINK_DEVICE_TYPE_SWITCH:
				return cuda.RemoteNVSwitch
			case gonvml.NVLINK_DEVICE_TYPE_IBMNPU:
				return cuda.RemoteCPU
			}
			return cuda.RemoteUnknown
		}
	}
	for _, other := range t.devices {
		if pci, ret := other.GetPciInfo(); ret == gonvml.SUCCESS && busID(pci) == bus && bus != "" {
			return cuda.RemoteGPU
		}
	}
	return cuda.RemoteUnknown
}

func (t *telemetry) Path(a, b int) (cuda.Path, error) {
	da, err := t.device(a)
	if err != nil {
		return cuda.Path{}, err
	}
	db, err := t.device(b)
	if err != nil {
		return cuda.Path{}, err
	}
	var path cuda.Path
	var p problems
	level, ret := da.GetTopologyCommonAncestor(db)
	path.Level = maybe(levelName(level), ret, "topology level", &p)
	p2p := func(caps gonvml.GpuP2PCapsIndex, what string) cuda.Maybe[string] {
		status, ret := da.GetP2PStatus(db, caps)
		return maybe(p2pName(status), ret, what, &p)
	}
	path.P2PRead = p2p(gonvml.P2P_CAPS_INDEX_READ, "P2P read")
	path.P2PWrite = p2p(gonvml.P2P_CAPS_INDEX_WRITE, "P2P write")
	path.P2PNVLink = p2p(gonvml.P2P_CAPS_INDEX_NVLINK, "P2P over NVLink")
	path.Problems = p
	return path, nil
}

func levelName(l gonvml.GpuTopologyLevel) string {
	switch l {
	case gonvml.TOPOLOGY_INTERNAL:
		return cuda.LevelInternal
	case gonvml.TOPOLOGY_SINGLE:
		return cuda.LevelPIX
	case gonvml.TOPOLOGY_MULTIPLE:
		return cuda.LevelPXB
	case gonvml.TOPOLOGY_HOSTBRIDGE:
		return cuda.LevelPHB
	case gonvml.TOPOLOGY_NODE:
		return cuda.LevelNode
	case gonvml.TOPOLOGY_SYSTEM:
		return cuda.LevelSystem
	}
	return fmt.Sprintf("level%d", int(l))
}

func p2pName(s gonvml.GpuP2PStatus) string {
	switch s {
	case gonvml.P2P_STATUS_OK:
		return cuda.P2POK
	case gonvml.P2P_STATUS_CHIPSET_NOT_SUPPORTED:
		return cuda.P2PChipsetNotSupported
	case gonvml.P2P_STATUS_GPU_NOT_SUPPORTED:
		return cuda.P2PGPUNotSupported
	case gonvml.P2P_STATUS_IOH_TOPOLOGY_NOT_SUPPORTED:
		return cuda.P2PTopologyNotSupported
	case gonvml.P2P_STATUS_DISABLED_BY_REGKEY:
		return cuda.P2PDisabledByRegkey
	case gonvml.P2P_STATUS_NOT_SUPPORTED:
		return cuda.P2PNotSupported
	}
	return cuda.P2PUnknown
}

// Read is the sampler's hot path: one small allocation (the field-value
// buffer cgo takes a pointer to), more only when a reading fails.
func (t *telemetry) Read(index int) (cuda.Reading, error) {
	var r cuda.Reading
	d, err := t.device(index)
	if err != nil {
		return r, err
	}
	var f firstFailure
	if v, ret := d.GetPowerUsage(); f.ok("power", ret) {
		r.PowerMW = cuda.Known(v)
	}
	if t.has.fieldValues {
		fv := []gonvml.FieldValue{{FieldId: gonvml.FI_DEV_POWER_INSTANT}}
		ret := d.GetFieldValues(fv)
		if ret == gonvml.SUCCESS {
			ret = gonvml.Return(fv[0].NvmlReturn)
		}
		if f.ok("instantaneous power", ret) {
			if v, ok := fieldUint(fv[0]); ok {
				r.PowerInstantMW = cuda.Known(uint32(v))
			}
		}
	}
	if v, ret := d.GetMemoryInfo(); f.ok("memory", ret) {
		r.MemoryUsedBytes = cuda.Known(v.Used)
	}
	if v, ret := d.GetClockInfo(gonvml.CLOCK_SM); f.ok("SM clock", ret) {
		r.SMClockMHz = cuda.Known(v)
	}
	if v, ret := d.GetClockInfo(gonvml.CLOCK_MEM); f.ok("memory clock", ret) {
		r.MemoryClockMHz = cuda.Known(v)
	}
	if v, ret := d.GetUtilizationRates(); f.ok("utilization", ret) {
		r.GPUUtilPercent = cuda.Known(v.Gpu)
		r.MemoryUtilPercent = cuda.Known(v.Memory)
	}
	if t.has.temperature {
		if v, ret := d.GetTemperature(gonvml.TEMPERATURE_GPU); f.ok("temperature", ret) {
			r.TemperatureC = cuda.Known(v)
		}
	}
	reasons, ret := uint64(0), gonvml.ERROR_FUNCTION_NOT_FOUND
	switch {
	case t.has.eventReasons:
		reasons, ret = d.GetCurrentClocksEventReasons()
	case t.has.throttleReasons:
		reasons, ret = d.GetCurrentClocksThrottleReasons()
	}
	if f.ok("throttle reasons", ret) {
		r.Throttle = cuda.Known(cuda.ThrottleReasons(reasons))
	}
	if f.ret != gonvml.SUCCESS {
		return r, fmt.Errorf("nvml: GPU %d: read %s: %w", index, f.what, f.ret)
	}
	return r, nil
}

// ReadEnergy reads the energy counter. (The field-value interface gives the
// same value at the same cost; its timestamp is when the value was fetched,
// not when the counter last changed, so it adds nothing.)
func (t *telemetry) ReadEnergy(index int) (cuda.Maybe[uint64], error) {
	d, err := t.device(index)
	if err != nil || !t.has.energyCounter {
		return cuda.Maybe[uint64]{}, err
	}
	v, ret := d.GetTotalEnergyConsumption()
	switch {
	case ret == gonvml.SUCCESS:
		return cuda.Known(v), nil
	case unsupported(ret):
		return cuda.Maybe[uint64]{}, nil
	}
	return cuda.Maybe[uint64]{}, fmt.Errorf("nvml: GPU %d: read energy counter: %w", index, ret)
}

// PowerHistory returns the driver's power samples (nvmlDeviceGetSamples
// with NVML_TOTAL_POWER_SAMPLES) newer than afterUs.
func (t *telemetry) PowerHistory(index int, afterUs uint64) ([]cuda.DriverPowerSample, error) {
	d, err := t.device(index)
	if err != nil || !t.has.samples {
		return nil, err
	}
	valueType, samples, ret := d.GetSamples(gonvml.TOTAL_POWER_SAMPLES, afterUs)
	wallNow, monoNow := time.Now(), cuda.MonotonicNanos()
	switch {
	case unsupported(ret): // NOT_FOUND: nothing newer than afterUs
		return nil, nil
	case ret != gonvml.SUCCESS:
		return nil, fmt.Errorf("nvml: GPU %d: read power history: %w", index, ret)
	}
	out := make([]cuda.DriverPowerSample, 0, len(samples))
	for _, s := range samples {
		mw, ok := decodeUint(valueType, s.SampleValue)
		ns := monotonicFromWall(int64(s.TimeStamp), wallNow, monoNow)
		if !ok || ns == 0 || s.TimeStamp <= afterUs {
			continue
		}
		out = append(out, cuda.DriverPowerSample{TimeNs: ns, DriverUs: s.TimeStamp, PowerMW: uint32(mw)})
	}
	return out, nil
}

// monotonicFromWall turns a driver timestamp (microseconds since 1970) into
// CLOCK_MONOTONIC nanoseconds, given the two clocks read at one moment. It
// returns 0 for a time that cannot be right: in the future, or more than a
// minute old (the wall clock was stepped). A slewing wall clock moves the
// result by microseconds at most over a run.
func monotonicFromWall(stampUs int64, wallNow time.Time, monoNow int64) int64 {
	if stampUs <= 0 {
		return 0
	}
	ns := monoNow - (wallNow.UnixNano() - stampUs*1000)
	if ns > monoNow+int64(time.Millisecond) || ns < monoNow-int64(time.Minute) {
		return 0
	}
	return ns
}

// fieldUint decodes an unsigned or non-negative field value.
func fieldUint(v gonvml.FieldValue) (uint64, bool) {
	return decodeUint(gonvml.ValueType(v.ValueType), v.Value)
}

// decodeUint decodes NVML's tagged value union (nvmlValue_t, little endian
// on every platform NVML supports) when it holds a non-negative integer.
func decodeUint(t gonvml.ValueType, b [8]byte) (uint64, bool) {
	switch t {
	case gonvml.VALUE_TYPE_UNSIGNED_INT:
		return uint64(binary.LittleEndian.Uint32(b[:])), true
	case gonvml.VALUE_TYPE_UNSIGNED_LONG, gonvml.VALUE_TYPE_UNSIGNED_LONG_LONG:
		return binary.LittleEndian.Uint64(b[:]), true
	case gonvml.VALUE_TYPE_UNSIGNED_SHORT:
		return uint64(binary.LittleEndian.Uint16(b[:])), true
	case gonvml.VALUE_TYPE_SIGNED_INT:
		if n := int32(binary.LittleEndian.Uint32(b[:])); n >= 0 {
			return uint64(n), true
		}
	case gonvml.VALUE_TYPE_SIGNED_LONG_LONG:
		if n := int64(binary.LittleEndian.Uint64(b[:])); n >= 0 {
			return uint64(n), true
		}
	}
	return 0, false
}

// firstFailure remembers the first reading that failed for a reason other
// than "not supported".
type firstFailure struct {
	what string
	ret  gonvml.Return
}

// ok reports whether ret is SUCCESS, and remembers it otherwise.
func (f *firstFailure) ok(what string, ret gonvml.Return) bool {
	if ret == gonvml.SUCCESS {
		return true
	}
	if !unsupported(ret) && f.ret == gonvml.SUCCESS {
		f.what, f.ret = what, ret
	}
	return false
}

// unsupported reports whether ret means the GPU or driver lacks a reading,
// which is not an error for lmdrive.
func unsupported(ret gonvml.Return) bool {
	switch ret {
	case gonvml.ERROR_NOT_SUPPORTED, gonvml.ERROR_FUNCTION_NOT_FOUND, gonvml.ERROR_NOT_FOUND:
		return true
	}
	return false
}

// problems collects "what: why" lines for readings that failed for a reason
// other than "not supported".
type problems []string

// maybe turns an NVML result into a cuda.Maybe, noting a failure under what
// (an empty what notes nothing).
func maybe[T any](v T, ret gonvml.Return, what string, p *problems) cuda.Maybe[T] {
	if ret == gonvml.SUCCESS {
		return cuda.Known(v)
	}
	if what != "" && !unsupported(ret) {
		*p = append(*p, what+": "+ret.Error())
	}
	return cuda.Maybe[T]{}
}

// busID returns the PCI bus ID NVML filled in, "" if none.
func busID(pci gonvml.PciInfo) string {
	if s := cString(pci.BusId[:]); s != "" {
		return s
	}
	return cString(pci.BusIdLegacy[:])
}

func cString(b []int8) string {
	buf := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		buf = append(buf, byte(c))
	}
	return string(buf)
}
