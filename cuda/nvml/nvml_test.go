//go:build cgo

package nvml

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/lmdrive/lmdrive/cuda"
)

// machine describes what go-nvml's mock servers leave out (they answer
// identity, memory and MIG queries and panic on anything else): clocks,
// power, modes, PCIe, NVLink and telemetry. fillMock installs it.
type machine struct {
	smMHz, smMaxMHz, smAppMHz    uint32
	memMHz, memMaxMHz, memAppMHz uint32
	powerLimitMW, powerDrawMW    uint32
	pcieGen, pcieWidth           int
	switchLinks                  int // NVLinks from each GPU to NVSwitches
	directLinks                  int // NVLinks between GPUs 2k and 2k+1 (bridged pairs)
	energyStepMJ                 uint64
}

var (
	dgxA100 = machine{smMHz: 1410, smMaxMHz: 1410, smAppMHz: 1095, memMHz: 1215, memMaxMHz: 1215, memAppMHz: 1215,
		powerLimitMW: 400000, powerDrawMW: 61000, pcieGen: 4, pcieWidth: 16, switchLinks: 12, energyStepMJ: 400}
	dgxH100 = machine{smMHz: 1980, smMaxMHz: 1980, smAppMHz: 1755, memMHz: 2619, memMaxMHz: 2619, memAppMHz: 2619,
		powerLimitMW: 700000, powerDrawMW: 72000, pcieGen: 5, pcieWidth: 16, switchLinks: 18, energyStepMJ: 700}
)

// pcieLevel models a DGX PCIe tree: GPUs 2k and 2k+1 share PCIe switches,
// four GPUs share a NUMA node.
func pcieLevel(a, b int) gonvml.GpuTopologyLevel {
	switch {
	case a/2 == b/2:
		return gonvml.TOPOLOGY_MULTIPLE
	case a/4 == b/4:
		return gonvml.TOPOLOGY_NODE
	}
	return gonvml.TOPOLOGY_SYSTEM
}

func pciInfo(bus string) gonvml.PciInfo {
	var p gonvml.PciInfo
	for i := range len(bus) {
		p.BusId[i] = int8(bus[i])
	}
	return p
}

func fillMock(s *server.Server, m machine) {
	devs := make([]*server.Device, len(s.Devices))
	for i, d := range s.Devices {
		devs[i] = d.(*server.Device)
	}
	indexOf := func(other gonvml.Device) int { return other.(*server.Device).Index }
	for i, d := range devs {
		d.PciBusID = fmt.Sprintf("00000000:%02X:00.0", 0x07+8*i)
		d.MemoryInfo.Used = 512 << 20
		d.MemoryInfo.Free = d.MemoryInfo.Total - d.MemoryInfo.Used
		d.GetPciInfoFunc = func() (gonvml.PciInfo, gonvml.Return) { return pciInfo(d.PciBusID), gonvml.SUCCESS }
		d.GetClockInfoFunc = func(c gonvml.ClockType) (uint32, gonvml.Return) { return pick(c, m.smMHz, m.memMHz) }
		d.GetMaxClockInfoFunc = func(c gonvml.ClockType) (uint32, gonvml.Return) { return pick(c, m.smMaxMHz, m.memMaxMHz) }
		d.GetApplicationsClockFunc = func(c gonvml.ClockType) (uint32, gonvml.Return) { return pick(c, m.smAppMHz, m.memAppMHz) }
		d.GetPowerManagementLimitFunc = func() (uint32, gonvml.Return) { return m.powerLimitMW, gonvml.SUCCESS }
		d.GetPowerManagementDefaultLimitFunc = func() (uint32, gonvml.Return) { return m.powerLimitMW, gonvml.SUCCESS }
		d.GetEnforcedPowerLimitFunc = func() (uint32, gonvml.Return) { return m.powerLimitMW, gonvml.SUCCESS }
		d.GetEccModeFunc = func() (gonvml.EnableState, gonvml.EnableState, gonvml.Return) {
			return gonvml.FEATURE_ENABLED, gonvml.FEATURE_ENABLED, gonvml.SUCCESS
		}
		d.GetPersistenceModeFunc = func() (gonvml.EnableState, gonvml.Return) { return gonvml.FEATURE_ENABLED, gonvml.SUCCESS }
		d.GetCurrPcieLinkGenerationFunc = func() (int, gonvml.Return) { return m.pcieGen, gonvml.SUCCESS }
		d.GetMaxPcieLinkGenerationFunc = func() (int, gonvml.Return) { return m.pcieGen, gonvml.SUCCESS }
		d.GetCurrPcieLinkWidthFunc = func() (int, gonvml.Return) { return m.pcieWidth, gonvml.SUCCESS }
		d.GetMaxPcieLinkWidthFunc = func() (int, gonvml.Return) { return m.pcieWidth, gonvml.SUCCESS }

		// NVLinks: the first directLinks go to the bridged partner, the
		// next switchLinks to an NVSwitch; the rest do not exist.
		partner := devs[i^1]
		d.GetNvLinkStateFunc = func(link int) (gonvml.EnableState, gonvml.Return) {
			if link < m.directLinks+m.switchLinks {
				return gonvml.FEATURE_ENABLED, gonvml.SUCCESS
			}
			return gonvml.FEATURE_DISABLED, gonvml.ERROR_INVALID_ARGUMENT
		}
		d.GetNvLinkRemotePciInfoFunc = func(link int) (gonvml.PciInfo, gonvml.Return) {
			if link < m.directLinks {
				return pciInfo(partner.PciBusID), gonvml.SUCCESS
			}
			return pciInfo(fmt.Sprintf("00000000:%02X:00.0", 0xC0+link%6)), gonvml.SUCCESS
		}
		d.GetNvLinkRemoteDeviceTypeFunc = func(link int) (gonvml.IntNvLinkDeviceType, gonvml.Return) {
			if link < m.directLinks {
				return gonvml.NVLINK_DEVICE_TYPE_GPU, gonvml.SUCCESS
			}
			return gonvml.NVLINK_DEVICE_TYPE_SWITCH, gonvml.SUCCESS
		}
		d.GetTopologyCommonAncestorFunc = func(other gonvml.Device) (gonvml.GpuTopologyLevel, gonvml.Return) {
			return pcieLevel(i, indexOf(other)), gonvml.SUCCESS
		}
		d.GetP2PStatusFunc = func(other gonvml.Device, caps gonvml.GpuP2PCapsIndex) (gonvml.GpuP2PStatus, gonvml.Return) {
			if caps == gonvml.P2P_CAPS_INDEX_NVLINK && m.switchLinks == 0 && i^1 != indexOf(other) {
				return gonvml.P2P_STATUS_NOT_SUPPORTED, gonvml.SUCCESS
			}
			return gonvml.P2P_STATUS_OK, gonvml.SUCCESS
		}

		// Telemetry: an energy counter that advances on every read, the
		// instantaneous power through the field-value interface, and a
		// driver power history sampled every 20 ms of wall-clock time,
		// 2.4 s of it kept, as on H100.
		var energy atomic.Uint64
		energy.Store(1_000_000 * uint64(i+1))
		d.GetTotalEnergyConsumptionFunc = func() (uint64, gonvml.Return) { return energy.Add(m.energyStepMJ), gonvml.SUCCESS }
		d.GetFieldValuesFunc = func(values []gonvml.FieldValue) gonvml.Return {
			for k := range values {
				v := &values[k]
				v.Timestamp = time.Now().UnixMicro()
				if v.FieldId != gonvml.FI_DEV_POWER_INSTANT {
					v.NvmlReturn = uint32(gonvml.ERROR_NOT_SUPPORTED)
					continue
				}
				v.ValueType = uint32(gonvml.VALUE_TYPE_UNSIGNED_INT)
				binary.LittleEndian.PutUint32(v.Value[:], m.powerDrawMW+5000)
			}
			return gonvml.SUCCESS
		}
		d.GetSamplesFunc = func(kind gonvml.SamplingType, lastSeen uint64) (gonvml.ValueType, []gonvml.Sample, gonvml.Return) {
			if kind != gonvml.TOTAL_POWER_SAMPLES {
				return 0, nil, gonvml.ERROR_NOT_SUPPORTED
			}
			now := uint64(time.Now().UnixMicro())
			var out []gonvml.Sample
			for ts := now - now%20_000 - 119*20_000; ts <= now; ts += 20_000 {
				if ts > lastSeen {
					var v gonvml.Sample
					v.TimeStamp = ts
					binary.LittleEndian.PutUint32(v.SampleValue[:], m.powerDrawMW)
					out = append(out, v)
				}
			}
			if len(out) == 0 {
				return gonvml.VALUE_TYPE_UNSIGNED_INT, nil, gonvml.ERROR_NOT_FOUND
			}
			return gonvml.VALUE_TYPE_UNSIGNED_INT, out, gonvml.SUCCESS
		}
		d.GetPowerUsageFunc = func() (uint32, gonvml.Return) { return m.powerDrawMW, gonvml.SUCCESS }
		d.GetUtilizationRatesFunc = func() (gonvml.Utilization, gonvml.Return) {
			return gonvml.Utilization{Gpu: 97, Memory: 41}, gonvml.SUCCESS
		}
		d.GetTemperatureFunc = func(gonvml.TemperatureSensors) (uint32, gonvml.Return) { return 44, gonvml.SUCCESS }
		d.GetCurrentClocksEventReasonsFunc = func() (uint64, gonvml.Return) {
			return gonvml.ClocksEventReasonSwPowerCap, gonvml.SUCCESS
		}
	}
}

func pick(c gonvml.ClockType, sm, mem uint32) (uint32, gonvml.Return) {
	switch c {
	case gonvml.CLOCK_SM, gonvml.CLOCK_GRAPHICS:
		return sm, gonvml.SUCCESS
	case gonvml.CLOCK_MEM:
		return mem, gonvml.SUCCESS
	}
	return 0, gonvml.ERROR_INVALID_ARGUMENT
}

func open(t testing.TB, s *server.Server) *telemetry {
	t.Helper()
	if ret := s.Init(); ret != gonvml.SUCCESS {
		t.Fatalf("mock init: %v", ret)
	}
	tel, err := newTelemetry(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Close(); err != nil {
			t.Error(err)
		}
	})
	return tel
}

func TestInventoryOnMockServers(t *testing.T) {
	tests := []struct {
		name      string
		server    *server.Server
		machine   machine
		gpuName   string
		cc        string
		memoryMiB uint64
		nvlink    string
	}{
		{"dgxa100", dgxa100.New(), dgxA100, "Mock NVIDIA A100-SXM4-40GB", "8.0", 40960, "NV12"},
		{"dgxh100", dgxh100.New(), dgxH100, "NVIDIA H100 80GB HBM3", "9.0", 81920, "NV18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fillMock(tt.server, tt.machine)
			tel := open(t, tt.server)
			inv, err := cuda.ReadInventory(tel)
			if err != nil {
				t.Fatal(err)
			}
			sys := inv.System
			if sys.DriverVersion != cuda.Known("550.54.15") || sys.CUDADriverVersion != cuda.Known("12.4") ||
				sys.NVMLVersion != cuda.Known("12.550.54.15") {
				t.Errorf("system = %+v", sys)
			}
			if len(inv.Devices) != 8 {
				t.Fatalf("%d GPUs, want 8", len(inv.Devices))
			}
			for i, d := range inv.Devices {
				mock := tt.server.Devices[i].(*server.Device)
				m := tt.machine
				checks := []struct {
					field     string
					got, want any
				}{
					{"index", d.Index, i},
					{"name", d.Name, tt.gpuName},
					{"UUID", d.UUID, mock.UUID},
					{"bus ID", d.PCIBusID, cuda.Known(mock.PciBusID)},
					{"compute capability", d.ComputeCapability, cuda.Known(tt.cc)},
					{"memory total", d.MemoryTotalBytes, cuda.Known(tt.memoryMiB << 20)},
					{"memory used", d.MemoryUsedBytes, cuda.Known(uint64(512 << 20))},
					{"SM clocks", d.SMClock, cuda.Clocks{CurrentMHz: cuda.Known(m.smMHz), MaxMHz: cuda.Known(m.smMaxMHz), ApplicationMHz: cuda.Known(m.smAppMHz)}},
					{"memory clocks", d.MemoryClock, cuda.Clocks{CurrentMHz: cuda.Known(m.memMHz), MaxMHz: cuda.Known(m.memMaxMHz), ApplicationMHz: cuda.Known(m.memAppMHz)}},
					{"power limit", d.PowerLimitMW, cuda.Known(m.powerLimitMW)},
					{"enforced power limit", d.PowerEnforcedLimitMW, cuda.Known(m.powerLimitMW)},
					{"ECC", d.ECC.String(), "on"},
					{"MIG", d.MIG.String(), "off"},
					{"persistence", d.Persistence, cuda.Known(true)},
					{"PCIe", d.PCIeCurrent.String(), fmt.Sprintf("gen%d x%d", m.pcieGen, m.pcieWidth)},
					{"problems", len(d.Problems), 0},
				}
				for _, c := range checks {
					if c.got != c.want {
						t.Errorf("GPU %d %s = %v, want %v", i, c.field, c.got, c.want)
					}
				}
			}
			if len(inv.Pairs) != 28 {
				t.Fatalf("%d pairs, want 28", len(inv.Pairs))
			}
			for _, p := range inv.Pairs {
				want := cuda.Pair{A: p.A, B: p.B, NVLinks: tt.machine.switchLinks, ViaNVSwitch: true, Path: cuda.Path{
					Level:     cuda.Known(levelName(pcieLevel(p.A, p.B))),
					P2PRead:   cuda.Known(cuda.P2POK),
					P2PWrite:  cuda.Known(cuda.P2POK),
					P2PNVLink: cuda.Known(cuda.P2POK),
				}}
				if fmt.Sprint(p) != fmt.Sprint(want) {
					t.Errorf("pair %d-%d = %+v, want %+v", p.A, p.B, p, want)
				}
				if p.Label() != tt.nvlink {
					t.Errorf("pair %d-%d label %q, want %q", p.A, p.B, p.Label(), tt.nvlink)
				}
			}
		})
	}
}

func TestTopologyWithoutNVSwitch(t *testing.T) {
	// Four H100 PCIe-style boards: 0-1 and 2-3 bridged with 6 NVLinks each,
	// no NVSwitch.
	s := dgxh100.NewWithGPUs(gpus.Multiple(4, gpus.H100_SXM5_80GB)...)
	m := dgxH100
	m.switchLinks, m.directLinks = 0, 6
	fillMock(s, m)
	inv, err := cuda.ReadInventory(open(t, s))
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]int]string{{0, 1}: "NV6", {2, 3}: "NV6", {0, 2}: "NODE", {0, 3}: "NODE", {1, 2}: "NODE", {1, 3}: "NODE"}
	for pair, label := range want {
		p, ok := inv.Pair(pair[0], pair[1])
		if !ok || p.Label() != label || p.ViaNVSwitch {
			t.Errorf("pair %v: %q (via switch %v), want %q", pair, p.Label(), p.ViaNVSwitch, label)
		}
		wantNVLinkP2P := cuda.P2POK
		if label == "NODE" {
			wantNVLinkP2P = cuda.P2PNotSupported
		}
		if p.P2PNVLink != cuda.Known(wantNVLinkP2P) {
			t.Errorf("pair %v: P2P over NVLink %v, want %s", pair, p.P2PNVLink, wantNVLinkP2P)
		}
	}
}

func TestUnsupportedReadingsAreNotErrors(t *testing.T) {
	s := dgxh100.NewWithGPUs(gpus.Multiple(2, gpus.H100_SXM5_80GB)...)
	fillMock(s, dgxH100)
	d := s.Devices[0].(*server.Device)
	notSupported := func() (uint32, gonvml.Return) { return 0, gonvml.ERROR_NOT_SUPPORTED }
	d.GetPowerManagementLimitFunc = notSupported
	d.GetPowerUsageFunc = notSupported
	d.GetApplicationsClockFunc = func(gonvml.ClockType) (uint32, gonvml.Return) { return 0, gonvml.ERROR_NOT_SUPPORTED }
	d.GetEccModeFunc = func() (gonvml.EnableState, gonvml.EnableState, gonvml.Return) {
		return 0, 0, gonvml.ERROR_NOT_SUPPORTED
	}
	d.GetTotalEnergyConsumptionFunc = func() (uint64, gonvml.Return) { return 0, gonvml.ERROR_NOT_SUPPORTED }
	d.GetFieldValuesFunc = func(values []gonvml.FieldValue) gonvml.Return {
		for k := range values {
			values[k].NvmlReturn = uint32(gonvml.ERROR_NOT_SUPPORTED)
		}
		return gonvml.SUCCESS
	}
	d.GetSamplesFunc = func(gonvml.SamplingType, uint64) (gonvml.ValueType, []gonvml.Sample, gonvml.Return) {
		return 0, nil, gonvml.ERROR_NOT_SUPPORTED
	}
	// A permission problem is not "unsupported": it is reported.
	d.GetEnforcedPowerLimitFunc = func() (uint32, gonvml.Return) { return 0, gonvml.ERROR_NO_PERMISSION }
	if ret, _ := d.SetMigMode(gonvml.DEVICE_MIG_ENABLE); ret != gonvml.SUCCESS {
		t.Fatal(ret)
	}

	tel := open(t, s)
	dev, err := tel.Device(0)
	if err != nil {
		t.Fatal(err)
	}
	if dev.PowerLimitMW.Valid || dev.SMClock.ApplicationMHz.Valid || dev.ECC.String() != "n/a" {
		t.Errorf("unsupported readings came back: power limit %v, app clock %v, ECC %v",
			dev.PowerLimitMW, dev.SMClock.ApplicationMHz, dev.ECC)
	}
	if dev.MIG.String() != "on" {
		t.Errorf("MIG = %v, want on", dev.MIG)
	}
	if len(dev.Problems) != 1 || !strings.HasPrefix(dev.Problems[0], "enforced power limit: ") {
		t.Errorf("problems = %q, want only the enforced power limit", dev.Problems)
	}

	r, err := tel.Read(0)
	if err != nil {
		t.Fatalf("unsupported readings gave an error: %v", err)
	}
	if r.PowerMW.Valid || r.PowerInstantMW.Valid || !r.TemperatureC.Valid {
		t.Errorf("reading = %+v", r)
	}
	e, err := tel.ReadEnergy(0)
	if err != nil || e.Valid {
		t.Errorf("unsupported energy counter: %+v, %v", e, err)
	}
	h, err := tel.PowerHistory(0, 0)
	if err != nil || len(h) != 0 {
		t.Errorf("unsupported power history: %d samples, %v", len(h), err)
	}

	d.GetTemperatureFunc = func(gonvml.TemperatureSensors) (uint32, gonvml.Return) { return 0, gonvml.ERROR_GPU_IS_LOST }
	r, err = tel.Read(0)
	if err == nil || !strings.Contains(err.Error(), "GPU 0: read temperature") {
		t.Errorf("lost GPU: error %v", err)
	}
	if !r.SMClockMHz.Valid || r.TemperatureC.Valid {
		t.Errorf("lost GPU: partial reading %+v", r)
	}
}

func TestReadOnMock(t *testing.T) {
	s := dgxa100.New()
	fillMock(s, dgxA100)
	tel := open(t, s)
	r, err := tel.Read(3)
	if err != nil {
		t.Fatal(err)
	}
	want := cuda.Reading{
		PowerMW:           cuda.Known(uint32(61000)),
		PowerInstantMW:    cuda.Known(uint32(66000)),
		MemoryUsedBytes:   cuda.Known(uint64(512 << 20)),
		SMClockMHz:        cuda.Known(uint32(1410)),
		MemoryClockMHz:    cuda.Known(uint32(1215)),
		GPUUtilPercent:    cuda.Known(uint32(97)),
		MemoryUtilPercent: cuda.Known(uint32(41)),
		TemperatureC:      cuda.Known(uint32(44)),
		Throttle:          cuda.Known(cuda.ThrottleSWPowerCap),
	}
	if r != want {
		t.Errorf("reading = %+v\nwant      %+v", r, want)
	}
	if _, err := tel.Read(8); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("GPU 8: error %v", err)
	}

	e, err := tel.ReadEnergy(3)
	if err != nil || e != cuda.Known(uint64(4_000_400)) {
		t.Errorf("energy = %v, %v; want 4000400 mJ", e, err)
	}

	before := cuda.MonotonicNanos()
	h, err := tel.PowerHistory(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 120 {
		t.Fatalf("%d history samples, want the 120 the mock keeps", len(h))
	}
	for k, p := range h {
		if p.PowerMW != 61000 || (k > 0 && p.TimeNs-h[k-1].TimeNs != int64(20*time.Millisecond)) {
			t.Fatalf("history sample %d: %+v after %+v", k, p, h[max(k-1, 0)])
		}
	}
	if last := h[len(h)-1].TimeNs; last > before+int64(time.Millisecond) || last < before-int64(21*time.Millisecond) {
		t.Errorf("newest history sample at %d, fetched at %d", last, before)
	}
	if h, err = tel.PowerHistory(3, h[len(h)-1].DriverUs+20_000); err != nil || len(h) != 0 {
		t.Errorf("nothing new: %d samples, %v", len(h), err)
	}
}

func TestMonotonicFromWall(t *testing.T) {
	wall := time.Unix(1_800_000_000, 0)
	mono := int64(5_000_000_000)
	tests := []struct {
		stampUs, want int64
	}{
		{wall.UnixMicro(), mono},
		{wall.UnixMicro() - 100_000, mono - 100_000_000},
		{wall.UnixMicro() + 10_000, 0},              // 10 ms in the future
		{wall.Add(-2 * time.Minute).UnixMicro(), 0}, // stale or a stepped clock
		{0, 0},
	}
	for _, tt := range tests {
		if got := monotonicFromWall(tt.stampUs, wall, mono); got != tt.want {
			t.Errorf("stamp %d: %d, want %d", tt.stampUs, got, tt.want)
		}
	}
}

func TestClosed(t *testing.T) {
	s := dgxh100.New()
	fillMock(s, dgxH100)
	tel := open(t, s)
	if err := tel.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tel.Read(0); err == nil {
		t.Error("Read after Close: no error")
	}
	if _, err := tel.System(); err == nil {
		t.Error("System after Close: no error")
	}
}

func TestSamplerOnMock(t *testing.T) {
	s := dgxh100.New()
	fillMock(s, dgxH100)
	tel := open(t, s)
	sampler, err := cuda.NewSampler(tel, []int{0, 1}, 2*time.Millisecond, cuda.WithEnergyInterval(4*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := sampler.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	submit := cuda.MonotonicNanos()
	time.Sleep(10 * time.Millisecond)
	first := cuda.MonotonicNanos()
	time.Sleep(20 * time.Millisecond)
	last := cuda.MonotonicNanos()
	series, err := sampler.Stop()
	if err != nil {
		t.Fatal(err)
	}
	energies, err := cuda.PhaseEnergies(series, cuda.Phases{SubmitNs: submit, FirstTokenNs: first, LastTokenNs: last})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range energies {
		ser := series[i]
		if ser.Failures != 0 || len(ser.Samples) < 3 {
			t.Errorf("GPU %d: %d samples, %d failures (%s)", ser.GPU, len(ser.Samples), ser.Failures, ser.FirstError)
		}
		// The mock's driver draws a constant 72 W.
		for _, phase := range []cuda.PhaseEnergy{e.Prefill, e.Decode} {
			if phase.Source != cuda.FromDriverPower || math.Abs(phase.MeanPowerW.Value-72) > 1e-6 {
				t.Errorf("GPU %d: phase %+v, want 72 W from the driver's power history", e.GPU, phase)
			}
		}
		if !e.CounterCheck.Valid {
			t.Errorf("GPU %d: no counter check", e.GPU)
		}
		if e.PeakMemoryBytes != cuda.Known(uint64(512<<20)) {
			t.Errorf("GPU %d: peak memory %v", e.GPU, e.PeakMemoryBytes)
		}
		// The mock counter advances 700 mJ per read; with a power history
		// it is read only at Start and Stop, until it changes (at once).
		n := len(ser.Energy)
		got := ser.Energy[n-1].EnergyMJ.Value - ser.Energy[0].EnergyMJ.Value
		if n != 4 || got != 3*700 {
			t.Errorf("GPU %d: counter advanced %d mJ over %d readings", e.GPU, got, n)
		}
	}
}

// BenchmarkSampleRound measures the sampler's own cost per GPU per fast
// sample: one round of readings over the eight GPUs of a mock DGX H100.
// Against the mock this is the Go-side overhead only; on a real GPU each NVML
// call adds a driver round trip.
func BenchmarkSampleRound(b *testing.B) {
	s := dgxh100.New()
	fillMock(s, dgxH100)
	tel := open(b, s)
	gpus := []int{0, 1, 2, 3, 4, 5, 6, 7}
	b.ReportAllocs()
	for b.Loop() {
		for _, g := range gpus {
			if _, err := tel.Read(g); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(gpus)), "ns/sample/GPU")
}

// BenchmarkEnergyRead measures one energy counter reading on the mock.
func BenchmarkEnergyRead(b *testing.B) {
	s := dgxh100.New()
	fillMock(s, dgxH100)
	tel := open(b, s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tel.ReadEnergy(0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPowerHistory measures fetching 100 ms of the driver's power
// history on the mock.
func BenchmarkPowerHistory(b *testing.B) {
	s := dgxh100.New()
	fillMock(s, dgxH100)
	tel := open(b, s)
	b.ReportAllocs()
	for b.Loop() {
		after := uint64(time.Now().Add(-100 * time.Millisecond).UnixMicro())
		if _, err := tel.PowerHistory(0, after); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSampler runs the real sampler, clock reads included, and reports
// the mean fast-read cost it recorded itself (Sample.ReadNs).
func BenchmarkSampler(b *testing.B) {
	s := dgxh100.New()
	fillMock(s, dgxH100)
	tel := open(b, s)
	var cost cuda.Cost
	for b.Loop() {
		sampler, err := cuda.NewSampler(tel, []int{0, 1}, time.Hour, cuda.WithEnergyInterval(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		if err := sampler.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		series, err := sampler.Stop()
		if err != nil {
			b.Fatal(err)
		}
		for _, ser := range series {
			c := ser.ReadCost().Fast
			cost.Reads += c.Reads
			cost.TotalNs += c.TotalNs
		}
	}
	b.ReportMetric(float64(cost.TotalNs)/float64(cost.Reads), "self-timed-ns/sample/GPU")
}
