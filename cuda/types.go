package cuda

import (
	"fmt"
	"strings"
)

// System describes the driver stack of the host.
type System struct {
	DriverVersion Maybe[string] `json:"driver_version"`
	// CUDADriverVersion is the CUDA version the driver supports, such as
	// "13.0" (what nvidia-smi prints as "CUDA Version").
	CUDADriverVersion Maybe[string] `json:"cuda_driver_version"`
	NVMLVersion       Maybe[string] `json:"nvml_version"`
	// Problems lists readings that failed for a reason other than "not
	// supported", one "what: why" line each.
	Problems []string `json:"problems,omitempty"`
}

// CUDAVersionString turns the integer NVML reports (1000*major + 10*minor,
// 13000 for 13.0) into "major.minor".
func CUDAVersionString(v int) string {
	return fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
}

// Clocks are the current, highest and application clock of one clock domain,
// in MHz.
type Clocks struct {
	CurrentMHz     Maybe[uint32] `json:"current_mhz"`
	MaxMHz         Maybe[uint32] `json:"max_mhz"`
	ApplicationMHz Maybe[uint32] `json:"application_mhz"`
}

// PCIeLink is a PCIe link generation and width (lanes).
type PCIeLink struct {
	Gen   Maybe[int] `json:"gen"`
	Width Maybe[int] `json:"width"`
}

func (l PCIeLink) String() string {
	if !l.Gen.Valid && !l.Width.Valid {
		return NotAvailable
	}
	return fmt.Sprintf("gen%s x%s", l.Gen, l.Width)
}

// Mode is an on/off setting that may have a change pending (takes effect
// after a reset or reboot).
type Mode struct {
	Current Maybe[bool] `json:"current"`
	Pending Maybe[bool] `json:"pending"`
}

func (m Mode) String() string {
	cur := onOff(m.Current)
	if m.Pending.Valid && m.Current.Valid && m.Pending.Value != m.Current.Value {
		return cur + " (" + onOff(m.Pending) + " pending)"
	}
	return cur
}

func onOff(m Maybe[bool]) string {
	switch {
	case !m.Valid:
		return NotAvailable
	case m.Value:
		return "on"
	default:
		return "off"
	}
}

// Device is the static description of one GPU.
type Device struct {
	Index    int           `json:"index"`
	Name     string        `json:"name"`
	UUID     string        `json:"uuid"`
	PCIBusID Maybe[string] `json:"pci_bus_id"`
	// ComputeCapability is "major.minor", such as "9.0" for H100.
	ComputeCapability Maybe[string] `json:"compute_capability"`

	MemoryTotalBytes Maybe[uint64] `json:"memory_total_bytes"`
	MemoryUsedBytes  Maybe[uint64] `json:"memory_used_bytes"`

	SMClock     Clocks `json:"sm_clock"`
	MemoryClock Clocks `json:"memory_clock"`

	// Power limits in milliwatts: the configured limit, its default, and
	// the limit actually enforced (the lowest of all limits in effect).
	PowerLimitMW         Maybe[uint32] `json:"power_limit_mw"`
	PowerDefaultLimitMW  Maybe[uint32] `json:"power_default_limit_mw"`
	PowerEnforcedLimitMW Maybe[uint32] `json:"power_enforced_limit_mw"`

	ECC         Mode        `json:"ecc"`
	MIG         Mode        `json:"mig"`
	Persistence Maybe[bool] `json:"persistence"`

	PCIeCurrent PCIeLink `json:"pcie_current"`
	PCIeMax     PCIeLink `json:"pcie_max"`

	// Problems lists readings that failed for a reason other than "not
	// supported" (no permission, for example), one "what: why" line each.
	Problems []string `json:"problems,omitempty"`
}

// NVLinkRemote says what is at the far end of an NVLink.
type NVLinkRemote string

const (
	RemoteGPU      NVLinkRemote = "gpu"
	RemoteNVSwitch NVLinkRemote = "nvswitch"
	RemoteCPU      NVLinkRemote = "cpu" // IBM NPU (POWER9 hosts)
	RemoteUnknown  NVLinkRemote = "unknown"
)

// NVLink is one active NVLink of a GPU.
type NVLink struct {
	Link int `json:"link"`
	// RemoteBusID is the PCI bus ID of the device at the far end: the peer
	// GPU for a direct link, the NVSwitch otherwise.
	RemoteBusID string       `json:"remote_bus_id"`
	Remote      NVLinkRemote `json:"remote"`
}

// Topology levels: the closest common ancestor of two GPUs on the PCIe tree,
// named as nvidia-smi topo -m names them.
const (
	LevelInternal = "INTERNAL" // the same board (dual-GPU cards)
	LevelPIX      = "PIX"      // one PCIe switch
	LevelPXB      = "PXB"      // several PCIe switches, no host bridge
	LevelPHB      = "PHB"      // a PCIe host bridge (CPU)
	LevelNode     = "NODE"     // host bridges within one NUMA node
	LevelSystem   = "SYS"      // across NUMA nodes (SMP interconnect)
)

// P2P statuses, as nvidia-smi topo -p2p abbreviates them.
const (
	P2POK                   = "OK"
	P2PChipsetNotSupported  = "CNS"
	P2PGPUNotSupported      = "GNS"
	P2PTopologyNotSupported = "TNS"
	P2PDisabledByRegkey     = "DR"
	P2PNotSupported         = "NS"
	P2PUnknown              = "U"
)

// Path is how two GPUs reach each other without NVLink, and what peer access
// the driver allows between them.
type Path struct {
	// Level is one of the Level constants.
	Level Maybe[string] `json:"level"`
	// P2P read and write over any path, and P2P over NVLink; each one of
	// the P2P constants.
	P2PRead   Maybe[string] `json:"p2p_read"`
	P2PWrite  Maybe[string] `json:"p2p_write"`
	P2PNVLink Maybe[string] `json:"p2p_nvlink"`
	// Problems lists readings that failed for a reason other than "not
	// supported".
	Problems []string `json:"problems,omitempty"`
}

// Pair is the connection between two GPUs, A < B.
type Pair struct {
	A int `json:"a"`
	B int `json:"b"`
	Path
	// NVLinks is the number of NVLinks between the two: direct links, or,
	// through NVSwitches, the links the less connected GPU has to them.
	NVLinks     int  `json:"nvlinks"`
	ViaNVSwitch bool `json:"via_nvswitch"`
}

// Label is the pair's cell in a topology matrix: "NV<n>" when NVLink
// connects the GPUs, else the PCIe level.
func (p Pair) Label() string {
	if p.NVLinks > 0 {
		return fmt.Sprintf("NV%d", p.NVLinks)
	}
	return p.Level.String()
}

// Inventory is everything `lmdrive gpus` shows.
type Inventory struct {
	System  System   `json:"system"`
	Devices []Device `json:"devices"`
	Pairs   []Pair   `json:"pairs"`
}

// Pair returns the connection between GPUs a and b, in either order.
func (inv Inventory) Pair(a, b int) (Pair, bool) {
	if a > b {
		a, b = b, a
	}
	for _, p := range inv.Pairs {
		if p.A == a && p.B == b {
			return p, true
		}
	}
	return Pair{}, false
}

// IndexByUUID returns the NVML index of the GPU with this UUID (as CUDA
// reports it, with or without the "GPU-" prefix).
func (inv Inventory) IndexByUUID(uuid string) (int, bool) {
	want := strings.TrimPrefix(strings.ToLower(uuid), "gpu-")
	for _, d := range inv.Devices {
		if strings.TrimPrefix(strings.ToLower(d.UUID), "gpu-") == want {
			return d.Index, true
		}
	}
	return 0, false
}

// IndexByBusID returns the NVML index of the GPU at this PCI bus ID. Both the
// NVML form (00000000:07:00.0) and the CUDA form (0000:07:00.0) match.
func (inv Inventory) IndexByBusID(busID string) (int, bool) {
	want := normalizeBusID(busID)
	for _, d := range inv.Devices {
		if d.PCIBusID.Valid && normalizeBusID(d.PCIBusID.Value) == want {
			return d.Index, true
		}
	}
	return 0, false
}

// normalizeBusID lowercases a PCI bus ID and strips the leading zeros of its
// domain, so that NVML's 8-digit and CUDA's 4-digit domains compare equal.
func normalizeBusID(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	domain, rest, ok := strings.Cut(id, ":")
	if !ok || !strings.Contains(rest, ":") {
		return id
	}
	domain = strings.TrimLeft(domain, "0")
	return domain + ":" + rest
}
