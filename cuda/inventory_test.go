package cuda

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestReadInventoryNVLinkCounting(t *testing.T) {
	bus := func(i int) Maybe[string] {
		return Known([]string{"00000000:07:00.0", "00000000:0F:00.0", "00000000:47:00.0"}[i])
	}
	direct := func(n int, to string) []NVLink {
		var out []NVLink
		for i := range n {
			out = append(out, NVLink{Link: i, RemoteBusID: to, Remote: RemoteGPU})
		}
		return out
	}
	toSwitch := func(n int) []NVLink {
		var out []NVLink
		for i := range n {
			out = append(out, NVLink{Link: i, RemoteBusID: "00000000:C1:00.0", Remote: RemoteNVSwitch})
		}
		return out
	}
	tests := []struct {
		name  string
		links map[int][]NVLink
		want  map[[2]int]string // pair → label
		via   bool
	}{
		{
			name:  "bridged pair, third GPU on PCIe only",
			links: map[int][]NVLink{0: direct(4, "00000000:0f:00.0"), 1: direct(4, "00000000:07:00.0")},
			want:  map[[2]int]string{{0, 1}: "NV4", {0, 2}: "SYS", {1, 2}: "SYS"},
		},
		{
			name:  "NVSwitch: the less connected GPU decides",
			links: map[int][]NVLink{0: toSwitch(18), 1: toSwitch(18), 2: toSwitch(12)},
			want:  map[[2]int]string{{0, 1}: "NV18", {0, 2}: "NV12", {1, 2}: "NV12"},
			via:   true,
		},
		{
			name: "no NVLink",
			want: map[[2]int]string{{0, 1}: "SYS", {0, 2}: "SYS", {1, 2}: "SYS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTelemetry{
				system:  System{DriverVersion: Known("580.65.06")},
				devices: []Device{{Index: 0, PCIBusID: bus(0)}, {Index: 1, PCIBusID: bus(1)}, {Index: 2, PCIBusID: bus(2)}},
				links:   tt.links,
				paths:   map[[2]int]Path{},
			}
			for p := range tt.want {
				f.paths[p] = Path{Level: Known(LevelSystem)}
			}
			inv, err := ReadInventory(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Pairs) != 3 {
				t.Fatalf("%d pairs, want 3", len(inv.Pairs))
			}
			for p, want := range tt.want {
				got, ok := inv.Pair(p[1], p[0])
				if !ok || got.Label() != want {
					t.Errorf("pair %v: %q, want %q", p, got.Label(), want)
				}
				if got.NVLinks > 0 && got.ViaNVSwitch != tt.via {
					t.Errorf("pair %v: via NVSwitch %v, want %v", p, got.ViaNVSwitch, tt.via)
				}
			}
		})
	}
}

func TestReadInventoryNoGPUs(t *testing.T) {
	_, err := ReadInventory(&fakeTelemetry{})
	if !errors.Is(err, ErrNoGPUs) {
		t.Errorf("error %v, want ErrNoGPUs", err)
	}
}

func TestIndexLookups(t *testing.T) {
	inv := Inventory{Devices: []Device{
		{Index: 0, UUID: "GPU-aaaa", PCIBusID: Known("00000000:07:00.0")},
		{Index: 1, UUID: "GPU-BBBB", PCIBusID: Known("00000000:0F:00.0")},
	}}
	if i, ok := inv.IndexByUUID("bbbb"); !ok || i != 1 {
		t.Errorf("IndexByUUID(bbbb) = %d, %v", i, ok)
	}
	if i, ok := inv.IndexByUUID("GPU-aaaa"); !ok || i != 0 {
		t.Errorf("IndexByUUID(GPU-aaaa) = %d, %v", i, ok)
	}
	if i, ok := inv.IndexByBusID("0000:0f:00.0"); !ok || i != 1 {
		t.Errorf("IndexByBusID(CUDA form) = %d, %v", i, ok)
	}
	if _, ok := inv.IndexByBusID("0000:99:00.0"); ok {
		t.Error("IndexByBusID found a GPU that is not there")
	}
}

func TestMaybeJSON(t *testing.T) {
	type rec struct {
		A Maybe[uint32]          `json:"a"`
		B Maybe[string]          `json:"b"`
		T Maybe[ThrottleReasons] `json:"t"`
	}
	in := rec{A: Known(uint32(7)), T: Known(ThrottleSWPowerCap | ThrottleGPUIdle)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":7,"b":null,"t":["gpu_idle","sw_power_cap"]}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var out rec
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip %+v, want %+v", out, in)
	}
	if in.B.String() != "n/a" || in.A.String() != "7" {
		t.Errorf("String: %q %q", in.B.String(), in.A.String())
	}
}

func TestThrottleReasons(t *testing.T) {
	tests := []struct {
		r       ThrottleReasons
		text    string
		slowing bool
	}{
		{0, "none", false},
		{ThrottleGPUIdle, "gpu_idle", false},
		{ThrottleApplicationsClocks | ThrottleSWPowerCap, "applications_clocks_setting,sw_power_cap", true},
		{ThrottleHWThermalSlowdown, "hw_thermal_slowdown", true},
		{1 << 40, "bit40", true},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.text {
			t.Errorf("%#x: %q, want %q", uint64(tt.r), got, tt.text)
		}
		if tt.r.Slowing() != tt.slowing {
			t.Errorf("%#x: Slowing() = %v", uint64(tt.r), !tt.slowing)
		}
		b, _ := json.Marshal(tt.r)
		var back ThrottleReasons
		if err := json.Unmarshal(b, &back); err != nil || back != tt.r {
			t.Errorf("%#x: JSON round trip gave %#x, %v", uint64(tt.r), uint64(back), err)
		}
	}
	var r ThrottleReasons
	if err := json.Unmarshal([]byte(`["no_such_reason"]`), &r); err == nil {
		t.Error("unknown reason accepted")
	}
}

func TestCUDAVersionString(t *testing.T) {
	for v, want := range map[int]string{13000: "13.0", 12040: "12.4", 12090: "12.9", 11080: "11.8"} {
		if got := CUDAVersionString(v); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
}

func TestWriteInventory(t *testing.T) {
	inv := Inventory{
		System: System{DriverVersion: Known("580.65.06"), CUDADriverVersion: Known("13.0"), NVMLVersion: Known("13.580.65.06")},
		Devices: []Device{
			{Index: 0, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-a", PCIBusID: Known("00000000:07:00.0"),
				MemoryTotalBytes: Known(uint64(81559) << 20), MemoryUsedBytes: Known(uint64(4) << 20),
				PowerLimitMW: Known(uint32(700000)), PowerDefaultLimitMW: Known(uint32(700000)), PowerEnforcedLimitMW: Known(uint32(650500)),
				SMClock: Clocks{CurrentMHz: Known(uint32(345)), MaxMHz: Known(uint32(1980))},
				ECC:     Mode{Current: Known(true), Pending: Known(false)}, Persistence: Known(true),
				PCIeCurrent: PCIeLink{Gen: Known(5), Width: Known(16)}},
			{Index: 1, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-b", Problems: []string{"power limit: Insufficient Permissions"}},
		},
		Pairs: []Pair{{A: 0, B: 1, Path: Path{Level: Known(LevelSystem), P2PRead: Known(P2POK), P2PWrite: Known(P2POK)}, NVLinks: 18, ViaNVSwitch: true}},
	}
	var buf bytes.Buffer
	if err := WriteInventory(&buf, inv); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Driver 580.65.06, CUDA driver 13.0, NVML 13.580.65.06",
		"4 MiB / 81559 MiB", "700 W (700 W, 650.5 W)", "345/1980/n/a", "on (off pending)",
		"gen5 x16 / n/a", "NV18*", "OK/OK", "GPU 1: power limit: Insufficient Permissions",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
