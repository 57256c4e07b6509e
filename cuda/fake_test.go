package cuda

import (
	"errors"
	"sync"
)

// fakeTelemetry is a scripted Telemetry for tests of this package; the NVML
// adapter is tested against go-nvml's mock servers in cuda/nvml.
type fakeTelemetry struct {
	system  System
	devices []Device
	links   map[int][]NVLink
	paths   map[[2]int]Path

	mu          sync.Mutex
	reads       map[int]int // fast reads per GPU
	energyReads map[int]int // energy reads per GPU
	reading     func(gpu, n int) (Reading, error)
	energy      func(gpu, n int) (Maybe[uint64], error)
	history     func(gpu int, afterUs uint64) ([]DriverPowerSample, error)
	closed      bool
}

func (f *fakeTelemetry) System() (System, error) { return f.system, nil }
func (f *fakeTelemetry) DeviceCount() int        { return len(f.devices) }

func (f *fakeTelemetry) Device(i int) (Device, error) {
	if err := CheckIndex(i, len(f.devices)); err != nil {
		return Device{}, err
	}
	return f.devices[i], nil
}

func (f *fakeTelemetry) NVLinks(i int) ([]NVLink, error) { return f.links[i], nil }

func (f *fakeTelemetry) Path(a, b int) (Path, error) { return f.paths[[2]int{a, b}], nil }

func (f *fakeTelemetry) Read(i int) (Reading, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Reading{}, errors.New("closed")
	}
	if f.reads == nil {
		f.reads = map[int]int{}
	}
	n := f.reads[i]
	f.reads[i]++
	if f.reading == nil {
		return Reading{}, nil
	}
	return f.reading(i, n)
}

func (f *fakeTelemetry) ReadEnergy(i int) (Maybe[uint64], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Maybe[uint64]{}, errors.New("closed")
	}
	if f.energyReads == nil {
		f.energyReads = map[int]int{}
	}
	n := f.energyReads[i]
	f.energyReads[i]++
	if f.energy == nil {
		return Maybe[uint64]{}, nil
	}
	return f.energy(i, n)
}

func (f *fakeTelemetry) PowerHistory(i int, afterUs uint64) ([]DriverPowerSample, error) {
	if f.history == nil {
		return nil, nil
	}
	return f.history(i, afterUs)
}

func (f *fakeTelemetry) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// fakeClock returns 1000, 2000, 3000 … nanoseconds, one step per call.
type fakeClock struct {
	mu  sync.Mutex
	now int64
}

func (c *fakeClock) read() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += 1000
	return c.now
}
